"""Sort Cubes (RoCo / DV-RoCoBench): three arms move three cubes onto their target panels.

Seven panels lie in a row. Alice (gripper) reaches panels 1-3, Bob (gripper, across the table)
3-5, Chad (suction) 5-7; a cube may rest only on its own target or on the hand-off panels 3 and
5, so cubes far from their targets must be handed along. One action is `PICK <cube> PLACE
<panel>` or `WAIT`. Levels sort1..sort5 grow in summed cube-to-target distance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from coopbench.core.types import Action, Feedback, ParseError
from coopbench.envs.roco import arm as kin
from coopbench.envs.roco.base import Move, Phase, RocoEnv, fmt

PANELS = [f"panel{i}" for i in range(1, 8)]
PANEL_Y = 44.0
PANEL_SIZE = 14.0
CUBES = {  # name -> (target panel, owner, polygon)
    "blue_square": ("panel2", "Alice", [(-3, -3), (3, -3), (3, 3), (-3, 3)]),
    "pink_polygon": (
        "panel4",
        "Bob",
        [(3.5 * math.cos(k * math.pi / 3), 3.5 * math.sin(k * math.pi / 3)) for k in range(6)],
    ),
    "yellow_trapezoid": ("panel6", "Chad", [(-4, -2.5), (4, -2.5), (2, 2.5), (-2, 2.5)]),
}
COLOURS = {
    "blue_square": (60, 110, 220),
    "pink_polygon": (235, 120, 180),
    "yellow_trapezoid": (240, 200, 40),
}
REACH = {"Alice": (1, 3), "Bob": (3, 5), "Chad": (5, 7)}
HANDOFF = ("panel3", "panel5")
LEVELS = {  # cube -> start panel; summed distance to targets: 3, 4, 5, 10, 11
    "level1": {"blue_square": 1, "pink_polygon": 5, "yellow_trapezoid": 7},
    "level2": {"blue_square": 3, "pink_polygon": 6, "yellow_trapezoid": 7},
    "level3": {"blue_square": 4, "pink_polygon": 2, "yellow_trapezoid": 5},
    "level4": {"blue_square": 5, "pink_polygon": 6, "yellow_trapezoid": 1},
    "level5": {"blue_square": 7, "pink_polygon": 3, "yellow_trapezoid": 1},
}
TOLERANCE = 10.0  # cm: RoCo's 0.1 m in xy


def panel_xy(panel: str) -> kin.Point:
    return (16.0 * int(panel[5:]), PANEL_Y)


def allowed_panels(cube: str) -> list[str]:
    return sorted({CUBES[cube][0], *HANDOFF}, key=lambda p: int(p[5:]))


class SortCubesEnv(RocoEnv):
    """`roco/sort-levelN-v0`."""

    task = "sort"
    levels = tuple(LEVELS)
    possible_agents = ["Alice", "Bob", "Chad"]
    size = (128.0, 80.0)

    def arm_specs(self) -> list[kin.ArmSpec]:
        lengths = (30.0, 26.0, 8.0)
        return [
            kin.make_spec("Alice", (32.0, -4.0), 90.0, lengths, "gripper", (32.0, 16.0),
                          (6.0, 58.0, 30.0, 60.0)),
            kin.make_spec("Bob", (64.0, 84.0), -90.0, lengths, "gripper", (64.0, 64.0),
                          (38.0, 90.0, 28.0, 60.0)),
            kin.make_spec("Chad", (96.0, -4.0), 90.0, lengths, "suction", (96.0, 16.0),
                          (70.0, 122.0, 30.0, 60.0)),
        ]

    def _build_scene(self) -> None:
        for cube, panel in LEVELS[self.level].items():
            pos, angle = self._jittered(panel_xy(f"panel{panel}"))
            self.world.add_object(cube, CUBES[cube][2], pos, angle)

    # -- vocabulary ------------------------------------------------------------------------

    def vocabulary(self, agent: str) -> list[str]:
        return [f"PICK {c} PLACE {p}" for c in CUBES for p in PANELS] + ["WAIT"]

    def wait_index(self, agent: str) -> int:
        return len(CUBES) * len(PANELS)

    def extra_names(self) -> list[str]:
        return PANELS

    def panel_of(self, cube: str) -> str | None:
        x, y = self.world.position(cube)
        best = min(PANELS, key=lambda p: math.dist(panel_xy(p), (x, y)))
        return best if math.dist(panel_xy(best), (x, y)) <= PANEL_SIZE / 2 + 1 else None

    def legal_indices(self, agent: str) -> list[int]:
        lo, hi = REACH[agent]
        reachable = {f"panel{i}" for i in range(lo, hi + 1)}
        occupied = {self.panel_of(c) for c in CUBES}
        legal = []
        for i, text in enumerate(self.vocabulary(agent)[:-1]):
            _, cube, _, panel = text.split()
            here = self.panel_of(cube)
            if (
                here in reachable
                and panel in reachable
                and panel in allowed_panels(cube)
                and panel not in occupied
            ):
                legal.append(i)
        return [*legal, self.wait_index(agent)]

    def _canonical(self, agent: str, text: str) -> str:
        words = text.split()
        if words in (["wait"], []) or text.startswith("wait"):
            return "WAIT"
        if "pick" not in words or "place" not in words:
            raise ParseError(
                f"{agent}: the action must contain both PICK and PLACE, e.g. "
                f"'PICK blue_square PLACE panel2' (or WAIT); got {text!r}.",
                agent=agent,
            )
        after_pick = words[words.index("pick") + 1 :]
        after_place = words[words.index("place") + 1 :]
        cube = next((w for w in after_pick if w in CUBES), None)
        if cube is None:
            word = after_pick[0] if after_pick else "nothing"
            raise self.unknown(agent, word, "cubes", list(CUBES))
        panel = next((w for w in after_place if w in PANELS), None)
        if panel is None:
            word = after_place[0] if after_place else "nothing"
            raise ParseError(
                f"{agent}: unknown place {word!r}; PLACE needs one of {', '.join(PANELS)}.",
                agent=agent,
            )
        return f"PICK {cube} PLACE {panel}"

    # -- rules -----------------------------------------------------------------------------

    @staticmethod
    def _split(action: Action) -> tuple[str, str] | None:
        if action.text == "WAIT":
            return None
        _, cube, _, panel = action.text.split()
        return cube, panel

    def _constraints(self, joint: Mapping[str, Action]) -> list[Feedback]:
        moves = {a: m for a, act in joint.items() if (m := self._split(act)) is not None}
        if not moves:
            return [
                Feedback(None, "constraint", "You can't all WAIT: at least one robot must PICK "
                         "a cube and PLACE it.")
            ]
        feedback = []
        picked = {cube for cube, _ in moves.values()}
        for agent, (cube, panel) in moves.items():
            allowed = allowed_panels(cube)
            here = self.panel_of(cube)
            others = [b for b, (c, _) in moves.items() if c == cube and b != agent]
            blocker = next(
                (c for c in CUBES if c not in picked and self.panel_of(c) == panel), None
            )
            if panel not in allowed:
                feedback.append(Feedback(agent, "constraint", (
                    f"{agent}: {cube} can only be placed on {', '.join(allowed[:-1])} or "
                    f"{allowed[-1]}; {panel} is another cube's target.")))
            elif here == panel:
                feedback.append(Feedback(agent, "constraint",
                                         f"{agent}: {cube} is already on {panel}."))
            elif others and others[0] < agent:
                continue  # reported once, by the first robot
            elif others:
                feedback.append(Feedback(agent, "constraint", (
                    f"{agent} and {others[0]} both PICK {cube}; a cube can be picked by one "
                    "robot at a time.")))
            elif blocker is not None:
                feedback.append(Feedback(agent, "constraint", (
                    f"{agent}: {panel} is occupied by {blocker}; PLACE {cube} on a free panel.")))
        return feedback

    def _phases(self, joint: Mapping[str, Action]) -> list[Phase]:
        pick: Phase = {}
        place: Phase = {}
        home: Phase = {}
        for agent, action in joint.items():
            move = self._split(action)
            if move is None:
                continue
            cube, panel = move
            pick[agent] = Move(action.text, cube, self.world.position(cube), op="grasp", obj=cube)
            place[agent] = Move(action.text, panel, panel_xy(panel), op="release", obj=cube)
            home[agent] = Move(action.text, "home", None)
        return [pick, place, home]

    def _arrive(self, agent: str, move: Move) -> str | None:
        if move.op == "grasp":
            self.world.hold(agent, move.obj)
        elif move.op == "release":
            self.world.release(agent)
        return None

    # -- success ---------------------------------------------------------------------------

    def units(self) -> list[str]:
        return list(CUBES)

    def completed(self) -> set[str]:
        return {
            c
            for c, (target, _, _) in CUBES.items()
            if not self.world.is_lifted(c)
            and math.dist(self.world.position(c), panel_xy(target)) <= TOLERANCE
        }

    def features(self):
        import numpy as np

        values: list[float] = []
        for cube in CUBES:
            values += [*self.norm(self.world.position(cube)), float(self.world.is_lifted(cube))]
            here = self.panel_of(cube)
            values += [(int(here[5:]) / 7.0) if here else 0.0]
        values += self.arm_features()
        return np.asarray(values, dtype=np.float32)

    # -- text ------------------------------------------------------------------------------

    def task_prompt(self) -> str:
        lines = [
            "[Task] Sort Cubes. Seven square panels lie in a row on the table, panel1 (left) to "
            "panel7 (right). Three robots share the table:",
        ]
        for agent in self.possible_agents:
            cube = next(c for c, v in CUBES.items() if v[1] == agent)
            lo, hi = REACH[agent]
            lines.append(
                f"- {agent} ({self.arm(agent).spec.tool}) reaches panel{lo}-panel{hi}; its cube is "
                f"{cube}, which must end on {CUBES[cube][0]}."
            )
        lines += [
            "Rules: a cube may be placed only on its own target panel or on the shared panels "
            "panel3 and panel5, never on another cube's target; a panel holds one cube; robots "
            "hand cubes over through panel3 and panel5; you can't all WAIT in the same round.",
            "Actions: PICK <cube> PLACE <panel> (one combined action) or WAIT.",
            "The task is done when every cube is on its target panel (within 10 cm of its "
            "centre). Coordinates are (x, y) in cm; the table is 128 x 80.",
            "Answer with one line per robot: NAME <robot> ACTION <action>.",
        ]
        return "\n".join(lines)

    def _cube_line(self, cube: str) -> str:
        here = self.panel_of(cube)
        where = f"on {here}" if here else f"on the table at {fmt(self.world.position(cube))}"
        return f"{cube} is {where} {fmt(self.world.position(cube))}; target {CUBES[cube][0]}."

    def describe(self, agent: str | None = None) -> str:
        if agent is None:
            return "\n".join([self.robots_text(), *[self._cube_line(c) for c in CUBES]])
        lo, hi = REACH[agent]
        mine = next(c for c, v in CUBES.items() if v[1] == agent)
        seen = [f"panel{i}" for i in range(lo, hi + 1)]
        lines = [
            f"You are {agent} ({self.arm(agent).spec.tool}); you can reach {', '.join(seen)}. "
            f"Your cube is {mine}, target {CUBES[mine][0]}.",
            self.robots_text().splitlines()[self.possible_agents.index(agent)],
        ]
        for panel in seen:
            cube = next((c for c in CUBES if self.panel_of(c) == panel), None)
            lines.append(f"{panel} at {fmt(panel_xy(panel))}: {cube or 'empty'}.")
        if self.panel_of(mine) not in seen:
            lines.append(self._cube_line(mine))
        return "\n".join(lines)

    def decorations(self):
        shapes = []
        for panel in PANELS:
            x, y = panel_xy(panel)
            colour = (200, 200, 200) if panel in HANDOFF else (225, 225, 225)
            for cube, (target, _, _) in CUBES.items():
                if target == panel:
                    colour = tuple(int(0.4 * c + 0.6 * 255) for c in COLOURS[cube])
            shapes.append(("rect", (x - 7, y - 7, x + 7, y + 7), colour, panel[5:]))
        return shapes

    def colour(self, name: str) -> tuple[int, int, int]:
        return COLOURS[name]

    # -- expert ----------------------------------------------------------------------------

    def expert_joint(self) -> dict[str, Action]:
        """Shortest hand-off schedule by breadth-first search over cube-to-panel states."""
        start = tuple(int(self.panel_of(c)[5:]) if self.panel_of(c) else 0 for c in CUBES)
        plan = _search(start)
        joint = {a: self.wait_action(a) for a in self.possible_agents}
        for agent, (cube, panel) in (plan or {}).items():
            joint[agent] = self.parse(agent, f"PICK {cube} PLACE panel{panel}")
        return joint


def _search(start: tuple[int, ...]) -> dict[str, tuple[str, int]] | None:
    """First joint move of a shortest schedule from `start` (panel index per cube)."""
    names = list(CUBES)
    goal = tuple(int(CUBES[c][0][5:]) for c in names)
    if start == goal or 0 in start:
        return None
    first: dict[tuple[int, ...], dict] = {start: {}}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for joint, nxt in _successors(state, names):
            if nxt in first:
                continue
            first[nxt] = first[state] or joint
            if nxt == goal:
                return first[nxt]
            queue.append(nxt)
    return None


def _successors(state: tuple[int, ...], names: list[str]):
    options: dict[str, list] = {}
    for agent, (lo, hi) in REACH.items():
        moves: list = [None]
        for i, cube in enumerate(names):
            if lo <= state[i] <= hi:
                for panel in allowed_panels(cube):
                    p = int(panel[5:])
                    if lo <= p <= hi and p != state[i]:
                        moves.append((i, p))
        options[agent] = moves
    agents = list(REACH)
    for a in options[agents[0]]:
        for b in options[agents[1]]:
            for c in options[agents[2]]:
                chosen = [m for m in (a, b, c) if m is not None]
                if not chosen:
                    continue
                cubes = [m[0] for m in chosen]
                places = [m[1] for m in chosen]
                if len(set(cubes)) < len(cubes) or len(set(places)) < len(places):
                    continue
                staying = {state[i] for i in range(len(names)) if i not in cubes}
                if staying & set(places):
                    continue
                nxt = list(state)
                for i, p in chosen:
                    nxt[i] = p
                picks = zip(agents, (a, b, c), strict=True)
                joint = {ag: (names[m[0]], m[1]) for ag, m in picks if m is not None}
                yield joint, tuple(nxt)
