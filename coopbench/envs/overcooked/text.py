"""The language side: rules for the task prompt and the state as text, (row, col) throughout."""

from __future__ import annotations

from coopbench.envs.overcooked.kitchen import (
    DIRECTION_NAMES,
    TERRAIN_NAMES,
    Kitchen,
    fmt,
    held,
    pot_soup,
    pot_status,
)

AGENT_CHARS = ("A", "B")
ITEM_CHARS = {"onion": "o", "tomato": "t", "dish": "d", "soup": "s"}
LEGEND = ("Legend: X counter, P pot, O onion dispenser, T tomato dispenser, D dish dispenser, "
          "S serving window, . floor, A Alice, B Bob; on counters: o onion, t tomato, d dish, "
          "s soup.")


def _visible(pos, centre, radius: int | None) -> bool:
    if radius is None:
        return True
    return abs(pos[0] - centre[0]) <= radius and abs(pos[1] - centre[1]) <= radius


def grid_text(kitchen: Kitchen, state, names, centre=None, radius: int | None = None) -> str:
    mdp = kitchen.mdp
    players = {p.position: AGENT_CHARS[i] for i, p in enumerate(state.players)}
    header = "     " + " ".join(f"{c:>2}" for c in range(mdp.width))
    lines = [header]
    for y, row in enumerate(mdp.terrain_mtx):
        cells = []
        for x, t in enumerate(row):
            pos = (x, y)
            if centre is not None and not _visible(pos, centre, radius):
                cells.append("?")
            elif pos in players:
                cells.append(players[pos])
            elif t == "X" and pos in state.objects:
                cells.append(ITEM_CHARS.get(state.objects[pos].name, "?"))
            else:
                cells.append("." if t == " " else t)
        lines.append(f"{y:>3}  " + " ".join(f"{c:>2}" for c in cells))
    return "\n".join(lines)


def _item_phrase(name: str | None, obj=None) -> str:
    if name is None:
        return "nothing"
    if name == "soup" and obj is not None:
        return f"a soup of {', '.join(obj.ingredients)}"
    return f"a {name}" if name != "onion" else "an onion"


def pot_line(kitchen: Kitchen, state, k: int, pos) -> str:
    soup = pot_soup(state, pos)
    status = pot_status(state, pos)
    if soup is None:
        return f"Pot {k} at {fmt(pos)}: empty."
    items = ", ".join(soup.ingredients)
    if status == "filling":
        return f"Pot {k} at {fmt(pos)}: {items}; not cooking (an empty-handed interact starts it)."
    if status == "cooking":
        return (f"Pot {k} at {fmt(pos)}: {items}; cooking, {soup.cook_time_remaining} more ticks "
                f"({soup._cooking_tick}/{soup.cook_time}).")
    return f"Pot {k} at {fmt(pos)}: {items}; soup ready to plate."


def agent_line(kitchen: Kitchen, state, i: int, name: str) -> str:
    p = state.players[i]
    facing = (p.position[0] + p.orientation[0], p.position[1] + p.orientation[1])
    terrain = kitchen.mdp.get_terrain_type_at_pos(facing)
    what = TERRAIN_NAMES.get(terrain, terrain)
    if terrain == "X" and facing in state.objects:
        what += f" with {_item_phrase(state.objects[facing].name)}"
    return (f"{name} is at {fmt(p.position)} facing {DIRECTION_NAMES[p.orientation]} "
            f"(towards the {what} at {fmt(facing)}), holding "
            f"{_item_phrase(held(p), p.held_object)}.")


def locations(kitchen: Kitchen) -> list[str]:
    mdp = kitchen.mdp

    def cells(ps) -> str:
        return ", ".join(fmt(p) for p in sorted(ps, key=lambda q: (q[1], q[0]))) or "none"

    out = [f"Onion dispensers: {cells(mdp.get_onion_dispenser_locations())}."]
    if mdp.get_tomato_dispenser_locations():
        out.append(f"Tomato dispensers: {cells(mdp.get_tomato_dispenser_locations())}.")
    out += [f"Dish dispensers: {cells(mdp.get_dish_dispenser_locations())}.",
            f"Serving windows: {cells(mdp.get_serving_locations())}.",
            f"Pots: {cells(kitchen.pots)}."]
    return out


def describe(env, agent: str | None, radius: int | None) -> str:
    kitchen, state = env.kitchen, env.state
    names = env.possible_agents
    centre = None
    if agent is not None and radius is not None:
        centre = state.players[names.index(agent)].position
    lines = [f"Tick {state.timestep} of {env.setting.horizon}; interaction step "
             f"{env.steps_taken} of {env.max_steps}; soups delivered: {env.soups_delivered}.",
             grid_text(kitchen, state, names, centre, radius), LEGEND]
    for k, pos in enumerate(kitchen.pots):
        if centre is None or _visible(pos, centre, radius):
            lines.append(pot_line(kitchen, state, k, pos))
    for i, name in enumerate(names):
        if centre is None or _visible(state.players[i].position, centre, radius):
            lines.append(agent_line(kitchen, state, i, name))
        else:
            lines.append(f"{name} is out of sight.")
    counters = [f"counter {k} at {fmt(c)} holds {_item_phrase(state.objects[c].name)}"
                for k, c in enumerate(kitchen.counters)
                if c in state.objects and (centre is None or _visible(c, centre, radius))]
    lines.append("Items on counters: " + ("; ".join(counters) if counters else "none") + ".")
    lines += locations(kitchen)
    if env.action_level == "skills":
        lines.append("Counters: " + ", ".join(f"{k} {fmt(c)}" for k, c in
                                               enumerate(kitchen.counters)) + ".")
    if agent is not None:
        lines.append(f"You are {agent}. Your options now: {', '.join(env.action_options(agent))}.")
    return "\n".join(lines)


def task_prompt(env) -> str:
    s = env.setting
    recipe = env.kitchen.mdp.start_all_orders
    soup = " + ".join(", ".join(o["ingredients"]) for o in recipe[:1])
    lines = [
        f"Overcooked-AI, layout {env.layout!r}. Alice and Bob cook and serve soups together.",
        "Positions are (row, col); row 0 is the top (north), col 0 the left (west).",
        f"A soup needs {soup} in a pot; an empty-handed agent facing the pot interacts to start "
        f"cooking, which takes {_cook_time(env)} ticks. Put the cooked soup on a dish (interact "
        "with the pot while holding a dish), then interact with a serving window to deliver it "
        f"for {_soup_value(env)} points. Each agent carries one item at most; items can be "
        "left on and taken from counters.",
    ]
    if s.name == "read":
        lines.append(f"Goal: deliver {s.min_soups} soup within {env.max_steps} interaction steps.")
    else:
        lines.append(f"Goal: deliver as many soups as possible in {s.horizon} ticks "
                     f"(success: at least {s.min_soups}).")
    if env.action_level == "primitive":
        lines.append("Each interaction step is one game tick. Actions: north, south, east, west "
                     "(move one cell, or turn to face that way if the cell is blocked), stay, "
                     "interact (with the cell you face). Agents cannot share or swap cells.")
    else:
        named = [v for v in env.vocabulary("Alice") if "counter" not in v]
        n = len(env.kitchen.counters)
        lines.append("Actions are skills that the motion planner carries out over as many "
                     "ticks as needed: " + ", ".join(named) + f", place held item on counter "
                     f"<k>, pick up item from counter <k> (k = 0..{n - 1}, listed in the state)."
                     " An interaction step ends when both agents' skills are done. Only "
                     "feasible skills are offered; a skill that becomes impossible (target gone, "
                     "path blocked) ends early with feedback.")
    lines.append("Answer with one line per agent: NAME <agent> ACTION <action>.")
    return "\n".join(lines)


def _cook_time(env) -> int:
    conf = env.mdp.recipe_config
    return int(conf.get("cook_time", 20))


def _soup_value(env) -> int:
    conf = env.mdp.recipe_config
    return int(conf.get("delivery_reward", 20))
