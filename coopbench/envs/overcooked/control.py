"""Turning per-agent goals into joint primitive actions, and running skills over game ticks.

Paths come from overcooked-ai's `MotionPlanner` (precomputed shortest plans between
position/orientation pairs). The planner plans for one agent alone, so this module adds the
joint part: predict the next cells, and when agents would collide, swap places or block each
other, let one step around (a breadth-first detour that treats the partner's cell as a wall),
step aside, or wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coopbench.envs.overcooked import skills as sk
from coopbench.envs.overcooked.kitchen import Kitchen, fmt, pot_status
from coopbench.envs.overcooked.upstream import OCAction

STAY = OCAction.STAY
INTERACT = OCAction.INTERACT
NAMES = ("Alice", "Bob")


@dataclass
class Intent:
    """Where one agent wants to go: any motion goal facing one of `targets`."""

    targets: list
    wait_until_ready: bool = False  # plating: stand at the pot until the soup is done


def _next_cell(kitchen: Kitchen, pos, action):
    if action in (STAY, INTERACT):
        return pos
    nxt = OCAction.move_in_direction(pos, action)
    return nxt if nxt in kitchen.valid_positions else pos


def joint_actions(kitchen: Kitchen, state, intents: list[Intent | None]) -> list:
    """One tick of primitive actions for both agents that heads each towards its intent."""
    players = state.players
    actions, goal_cells = [], []
    for i, intent in enumerate(intents):
        partner = players[1 - i].position
        if intent is None or not intent.targets:
            actions.append(STAY)
            goal_cells.append(set())
            continue
        options = kitchen.goals(players[i].pos_and_or, intent.targets)
        if not options:
            actions.append(STAY)
            goal_cells.append(set())
            continue
        # Prefer goals the partner is not standing on.
        _, goal = min(options, key=lambda cg: cg[0] + (6 if cg[1][0] == partner else 0))
        goal_cells.append({g[0] for _, g in options if g[0] != partner} or {goal[0]})
        if players[i].pos_and_or == goal:
            waiting = intent.wait_until_ready and pot_status(state, _facing(goal)) != "ready"
            actions.append(STAY if waiting else INTERACT)
        else:
            actions.append(kitchen.first_action(players[i].pos_and_or, goal))
    return _resolve(kitchen, state, actions, goal_cells, intents)


def _facing(pos_or):
    (x, y), (dx, dy) = pos_or
    return (x + dx, y + dy)


def _resolve(kitchen, state, actions, goal_cells, intents) -> list:
    pos = [p.position for p in state.players]
    nxt = [_next_cell(kitchen, pos[i], actions[i]) for i in range(2)]
    idle = [intents[i] is None or not intents[i].targets for i in range(2)]
    for i in (1, 0):  # Bob yields first
        j = 1 - i
        if nxt[i] != pos[j]:
            continue
        if nxt[j] == pos[j] and not idle[j] or nxt[j] == pos[i]:
            # Blocked by a busy partner, or head-on: go around if possible.
            d = kitchen.detour(pos[i], goal_cells[i], pos[j])
            if d is not None:
                actions[i], nxt[i] = d, _next_cell(kitchen, pos[i], d)
                continue
            if nxt[j] == pos[i]:  # head-on with no detour: step aside
                aside = kitchen.free_neighbours(pos[i], {pos[j], nxt[j]})
                actions[i] = aside[0] if aside else STAY
                nxt[i] = _next_cell(kitchen, pos[i], actions[i])
                continue
            actions[i], nxt[i] = STAY, pos[i]
        elif nxt[j] == pos[j] and idle[j]:
            # The partner has nothing to do and is in the way: it steps aside.
            aside = kitchen.free_neighbours(pos[j], {pos[i]} | goal_cells[i]) or \
                kitchen.free_neighbours(pos[j], {pos[i]})
            if aside:
                actions[j] = aside[0]
                nxt[j] = _next_cell(kitchen, pos[j], aside[0])
    if nxt[0] == nxt[1]:
        actions[1] = STAY
    return actions


def _stuck(action, intent: Intent | None, before, after) -> bool:
    """The agent wanted to move but did not, or had to wait without a reason of its own."""
    if action == STAY:
        return intent is not None and not intent.wait_until_ready
    return before.pos_and_or == after.pos_and_or


# -- running skills over ticks ------------------------------------------------------------


@dataclass
class SkillRun:
    skill: sk.Skill
    status: str = "active"  # active | done | failed
    message: str = ""
    blocked: int = 0
    fruitless: int = 0
    ticks: int = field(default=0)


def intent_for(kitchen: Kitchen, state, skill: sk.Skill, idx: int) -> Intent | None:
    if skill.kind == "wait":
        return None
    found = sk.targets(kitchen, state, skill, idx)
    return Intent(found, wait_until_ready=skill.kind == "plate")


def run_skills(kitchen: Kitchen, state, chosen: list[sk.Skill], tick, out_of_time, *,
               max_ticks: int, patience: int = 6):
    """Execute one skill per agent until every skill is done or failed (at least one tick).

    `tick(joint_primitive) -> state` advances the real game; `out_of_time()` says the game is
    over. Returns (runs, ticks_used).
    A skill fails with a message when it is or becomes infeasible (e.g. the target vanished),
    when the agent is blocked for `patience` ticks, or when it takes longer than `max_ticks`.
    """
    runs = [SkillRun(s) for s in chosen]
    for i, run in enumerate(runs):
        if run.skill.kind != "wait" and not sk.feasible(kitchen, state, run.skill, i):
            run.status = "failed"
            run.message = (f"{NAMES[i]} cannot {run.skill.text!r} now: "
                           f"{sk.why_infeasible(kitchen, state, run.skill, i)}.")
    used = 0
    while True:
        intents = []
        for i, run in enumerate(runs):
            if run.status != "active" or run.skill.kind == "wait":
                intents.append(None)
                continue
            intent = intent_for(kitchen, state, run.skill, i)
            if not intent.targets or not kitchen.goals(state.players[i].pos_and_or,
                                                       intent.targets):
                run.status = "failed"
                run.message = (f"{NAMES[i]} stopped {run.skill.text!r}: "
                               f"{sk.why_infeasible(kitchen, state, run.skill, i)}.")
                intent = None
            intents.append(intent)
        if used > 0 and all(r.status != "active" for r in runs):
            break
        joint = joint_actions(kitchen, state, intents)
        before = state
        state = tick(tuple(joint))
        used += 1
        for i, run in enumerate(runs):
            if run.status != "active":
                continue
            run.ticks += 1
            if run.skill.kind == "wait":
                run.status = "done"
            elif joint[i] == INTERACT:
                if sk.achieved(kitchen, before, state, run.skill, i):
                    run.status = "done"
                else:
                    run.fruitless += 1
            elif _stuck(joint[i], intents[i], before.players[i], state.players[i]):
                run.blocked += 1
            else:
                run.blocked = 0
            if run.status != "active":
                continue
            if run.blocked >= patience:
                other = state.players[1 - i].position
                run.status, run.message = "failed", (
                    f"{NAMES[i]} gave up {run.skill.text!r}: the way is blocked by "
                    f"{NAMES[1 - i]} at {fmt(other)}.")
            elif run.fruitless >= 3:
                run.status, run.message = "failed", (
                    f"{NAMES[i]} gave up {run.skill.text!r}: interacting had no effect.")
            elif run.ticks >= max_ticks:
                run.status, run.message = "failed", (
                    f"{NAMES[i]} gave up {run.skill.text!r} after {run.ticks} ticks.")
        if all(r.status != "active" for r in runs):
            break
        if out_of_time():
            for i, run in enumerate(runs):
                if run.status == "active":
                    run.status, run.message = "failed", (
                        f"{NAMES[i]}'s {run.skill.text!r} was cut off by the end of the game.")
            break
    return runs, used
