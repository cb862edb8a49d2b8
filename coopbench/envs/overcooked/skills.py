"""High-level skills: what each means, when it is feasible, where it goes, when it is done.

A skill names a kind of terrain to interact with; `targets()` resolves it against the current
state to concrete (x, y) positions, so a target that vanishes (the partner filled the pot or
took the item) simply drops out, and the executor finishes the skill early with feedback.
"""

from __future__ import annotations

from dataclasses import dataclass

from coopbench.envs.overcooked.kitchen import Kitchen, fmt, held, pot_soup, pot_status

WAIT = "wait"


@dataclass(frozen=True)
class Skill:
    text: str
    kind: str  # pickup | put | cook | plate | serve | place | take | wait
    arg: str | int | None = None


def vocabulary(kitchen: Kitchen) -> list[Skill]:
    """The fixed skill vocabulary of a layout (the same for both agents)."""
    skills = []
    for item in kitchen.ingredients:
        skills.append(Skill(f"pick up {item}", "pickup", item))
    skills.append(Skill("pick up dish", "pickup", "dish"))
    for item in kitchen.ingredients:
        skills.append(Skill(f"put {item} in pot", "put", item))
    skills += [
        Skill("start cooking", "cook"),
        Skill("plate soup", "plate"),
        Skill("serve soup", "serve"),
    ]
    for k in range(len(kitchen.counters)):
        skills.append(Skill(f"place held item on counter {k}", "place", k))
    for k in range(len(kitchen.counters)):
        skills.append(Skill(f"pick up item from counter {k}", "take", k))
    skills.append(Skill(WAIT, "wait"))
    return skills


def aliases(kitchen: Kitchen) -> dict[str, str]:
    """Accepted variants -> canonical skill text."""
    out = {"stay": WAIT, "noop": WAIT, "do nothing": WAIT, "idle": WAIT,
           "fill dish with soup": "plate soup", "pick up soup": "plate soup",
           "deliver soup": "serve soup", "cook": "start cooking", "cook soup": "start cooking",
           "get dish": "pick up dish", "pickup dish": "pick up dish"}
    for item in kitchen.ingredients:
        out[f"get {item}"] = f"pick up {item}"
        out[f"pickup {item}"] = f"pick up {item}"
        out[f"put {item} into pot"] = f"put {item} in pot"
        out[f"put {item} in the pot"] = f"put {item} in pot"
    for k in range(len(kitchen.counters)):
        out[f"place item on counter {k}"] = f"place held item on counter {k}"
        out[f"place on counter {k}"] = f"place held item on counter {k}"
        out[f"pick up from counter {k}"] = f"pick up item from counter {k}"
        out[f"take item from counter {k}"] = f"pick up item from counter {k}"
    return out


def targets(kitchen: Kitchen, state, skill: Skill, agent_idx: int) -> list:
    """Terrain positions the skill would interact with now; [] if its preconditions fail."""
    hand = held(state.players[agent_idx])
    kind = skill.kind
    if kind == "pickup":
        return list(kitchen.dispensers(skill.arg)) if hand is None else []
    if kind == "put":
        if hand != skill.arg:
            return []
        return [p for p in kitchen.pots if pot_status(state, p) in ("empty", "filling")
                and not (pot_soup(state, p) is not None and pot_soup(state, p).is_full)]
    if kind == "cook":
        if hand is not None:
            return []
        return [p for p in kitchen.pots if pot_status(state, p) == "filling"]
    if kind == "plate":
        if hand != "dish":
            return []
        return [p for p in kitchen.pots if pot_status(state, p) in ("cooking", "ready")]
    if kind == "serve":
        return list(kitchen.mdp.get_serving_locations()) if hand == "soup" else []
    if kind == "place":
        c = kitchen.counters[skill.arg]
        return [c] if hand is not None and c not in state.objects else []
    if kind == "take":
        c = kitchen.counters[skill.arg]
        return [c] if hand is None and c in state.objects else []
    return []


def _reach(kitchen: Kitchen, state, agent_idx: int, target) -> bool:
    return kitchen.can_reach(state.players[agent_idx].pos_and_or, target)


def feasible(kitchen: Kitchen, state, skill: Skill, agent_idx: int) -> bool:
    if skill.kind == "wait":
        return True
    return any(_reach(kitchen, state, agent_idx, t)
               for t in targets(kitchen, state, skill, agent_idx))


def achieved(kitchen: Kitchen, before, after, skill: Skill, agent_idx: int) -> bool:
    """Did the agent's last interact accomplish `skill` (comparing states around it)?"""
    old, new = held(before.players[agent_idx]), held(after.players[agent_idx])
    kind = skill.kind
    if kind == "pickup":
        return new == skill.arg
    if kind == "take":
        return old is None and new is not None
    if kind in ("put", "serve", "place"):
        return old is not None and new is None
    if kind == "plate":
        return new == "soup"
    if kind == "cook":
        facing = _facing(after.players[agent_idx])
        return pot_status(before, facing) == "filling" and pot_status(after, facing) == "cooking"
    return False


def _facing(player):
    (x, y), (dx, dy) = player.position, player.orientation
    return (x + dx, y + dy)


def why_infeasible(kitchen: Kitchen, state, skill: Skill, agent_idx: int) -> str:
    """A short reason, phrased for an LLM, why `skill` cannot be done now."""
    hand = held(state.players[agent_idx])
    kind = skill.kind
    if kind in ("pickup", "cook", "take") and hand is not None:
        return f"hands are full (holding {hand})"
    if kind == "put" and hand != skill.arg:
        return f"not holding {skill.arg}"
    if kind == "plate" and hand != "dish":
        return "not holding a dish"
    if kind == "serve" and hand != "soup":
        return "not holding a soup"
    if kind == "place" and hand is None:
        return "hands are empty"
    if kind in ("place", "take"):
        c = kitchen.counters[skill.arg]
        if kind == "place" and c in state.objects:
            return f"counter {skill.arg} at {fmt(c)} is occupied"
        if kind == "take" and c not in state.objects:
            return f"counter {skill.arg} at {fmt(c)} is empty"
    if not targets(kitchen, state, skill, agent_idx):
        return {"put": "no pot can take an ingredient now",
                "cook": "no pot has uncooked ingredients",
                "plate": "no soup is cooking or ready"}.get(kind, "nothing to do it with")
    return "the target cannot be reached from here"
