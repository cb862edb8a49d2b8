"""Sweep Floor (RoCo / DV-RoCoBench): a broom and a dustpan clear the yellow and green cubes.

Alice (bottom edge) holds a dustpan, Bob (top edge) a broom. Both MOVE to the same cube (the
dustpan lands just below it, the broom just above it), then Bob SWEEPs while Alice WAITs: the
broom pushes the cube by contact into the dustpan, where it stays. DUMP (Alice) empties the
dustpan into the trash_bin from anywhere. Only the yellow and green cubes count; the level name
gives their numbers (Y2_G3: 2 yellow, 3 green) among 7 or 9 cubes.

A MOVE to the cube a robot already stands at does nothing (the same step as WAIT), so it is not
among the legal options; written out it still parses and runs as that no-op, as in RoCo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from coopbench.core.types import Action, Feedback, ParseError
from coopbench.envs.roco import arm as kin
from coopbench.envs.roco.base import Move, Phase, RocoEnv, fmt

BIN = (11.0, 13.0)
BIN_RADIUS = 9.0
BIN_TOLERANCE = 20.0  # RoCo: within 0.2 m of trash_bin_bottom
CUBE = [(-2.5, -2.5), (2.5, -2.5), (2.5, 2.5), (-2.5, 2.5)]
DUSTPAN_GAP = 9.0  # pocket centre below the cube's centre when staged
BROOM_GAP = 5.0  # broom head above the cube's centre when staged
UP, DOWN = math.pi / 2, -math.pi / 2
BOTTOM = [(22.0 + 14 * i, 30.0) for i in range(7)]
TOP = [(x, 56.0) for x in (22.0, 36.0, 50.0, 78.0, 92.0, 106.0)]
SLOTS = [BOTTOM[1], TOP[2], BOTTOM[4], TOP[3], BOTTOM[6], TOP[0], BOTTOM[2], TOP[5], BOTTOM[3],
         TOP[1], BOTTOM[5], BOTTOM[0], TOP[4]]
COLOURS = {
    "yellow": (240, 205, 40), "green": (70, 170, 70), "blue": (60, 110, 220),
    "pink": (235, 120, 180), "red": (210, 50, 50), "orange": (240, 140, 40),
    "purple": (140, 80, 190),
}
LEVELS = {  # level -> (yellow, green, distractor colours)
    "y1g1": (1, 1, ["blue", "pink", "red", "orange", "purple"]),
    "y1g2": (1, 2, ["blue", "pink", "red", "orange"]),
    "y2g2": (2, 2, ["blue", "pink", "red"]),
    "y2g3": (2, 3, ["blue", "pink", "red", "orange"]),
    "y3g3": (3, 3, ["blue", "pink", "red"]),
}
MAX_CUBES = 9
COMPLETE = "all_targets_dumped"  # the rewarded unit of the final DUMP (RoCo's success reward)


def level_cubes(level: str) -> list[str]:
    yellow, green, others = LEVELS[level]
    return (
        [f"yellow_cube_{i}" for i in range(1, yellow + 1)]
        + [f"green_cube_{i}" for i in range(1, green + 1)]
        + [f"{c}_cube_1" for c in others]
    )


def is_target(cube: str) -> bool:
    return cube.startswith(("yellow", "green"))


class SweepFloorEnv(RocoEnv):
    """`roco/sweep-yNgM-v0`."""

    task = "sweep"
    features_version = "sweep-2"  # per-cube "robot at this cube" flags
    reward_version = "2"  # ReAd's +1 per target swept, and +1 when the task is complete
    levels = tuple(LEVELS)
    possible_agents = ["Alice", "Bob"]
    size = (128.0, 80.0)

    @property
    def cubes(self) -> list[str]:
        return level_cubes(self.level)

    def arm_specs(self) -> list[kin.ArmSpec]:
        lengths = (40.0, 36.0, 8.0)
        return [
            kin.make_spec("Alice", (64.0, -16.0), 90.0, lengths, "dustpan", (98.0, -4.0),
                          (0.0, 128.0, 0.0, 70.0), tool_offset=4.5, home_heading_deg=0.0,
                          limits_deg=(110.0, 150.0, 150.0)),
            kin.make_spec("Bob", (64.0, 90.0), -90.0, lengths, "broom", (30.0, 86.0),
                          (0.0, 128.0, 10.0, 80.0), home_heading_deg=180.0,
                          limits_deg=(110.0, 150.0, 150.0)),
        ]

    def _build_scene(self) -> None:
        shift = 2 * list(LEVELS).index(self.level)
        slots = SLOTS[shift:] + SLOTS[:shift]
        for cube, slot in zip(self.cubes, slots, strict=False):
            pos, angle = self._jittered(slot)
            self.world.add_object(cube, CUBE, pos, angle)
        self.state.update(at={"Alice": None, "Bob": None}, bin=[])

    # -- vocabulary ------------------------------------------------------------------------

    def vocabulary(self, agent: str) -> list[str]:
        moves = [f"MOVE {c}" for c in self.cubes]
        if agent == "Alice":
            return [*moves, "DUMP", "WAIT"]
        return [*moves, *(f"SWEEP {c}" for c in self.cubes), "WAIT"]

    def wait_index(self, agent: str) -> int:
        return len(self.vocabulary(agent)) - 1

    def extra_names(self) -> list[str]:
        return ["trash_bin", "dustpan", "broom"]

    def where(self, cube: str) -> str:
        if cube in self.state["bin"]:
            return "trash_bin"
        if cube in self.world.held("Alice"):
            return "dustpan"
        return "table"

    def legal_indices(self, agent: str) -> list[int]:
        """RoCo's rules, less the MOVE to the cube `agent` is at (a duplicate of WAIT that a
        critic cannot tell from progress)."""
        legal = []
        here = self.state["at"][agent]
        for i, text in enumerate(self.vocabulary(agent)):
            words = text.split()
            if (words[0] == "MOVE" and self.where(words[1]) == "table" and words[1] != here) or (
                words[0] == "SWEEP"
                and self.where(words[1]) == "table"
                and self.state["at"]["Alice"] == words[1]
                and self.state["at"]["Bob"] == words[1]
            ) or (words[0] == "DUMP" and self.world.held("Alice")) or words[0] == "WAIT":
                legal.append(i)
        return legal

    def _canonical(self, agent: str, text: str) -> str:
        words = text.split()
        if not words or words[0] == "wait":
            return "WAIT"
        verb = words[0]
        if verb not in ("move", "sweep", "dump"):
            raise ParseError(
                f"{agent}: unknown action {verb.upper()!r}; the actions are MOVE <cube>, "
                "SWEEP <cube> (Bob), DUMP (Alice) and WAIT.",
                agent=agent,
            )
        if verb == "sweep" and agent != "Bob":
            raise ParseError(f"{agent} holds the dustpan and cannot SWEEP; only Bob (broom) "
                             "can SWEEP.", agent=agent)
        if verb == "dump":
            if agent != "Alice":
                raise ParseError(f"{agent} holds the broom and cannot DUMP; only Alice "
                                 "(dustpan) can DUMP.", agent=agent)
            return "DUMP"
        if len(words) < 2:
            raise ParseError(f"{agent}: {verb.upper()} needs a cube, e.g. {verb.upper()} "
                             f"{self.cubes[0]}.", agent=agent)
        cube = words[1]
        if cube == "trash_bin":
            raise ParseError(f"{agent}: MOVE target must be a cube; there is no need to MOVE to "
                             "the trash_bin before DUMP (DUMP works from anywhere).", agent=agent)
        if cube not in self.cubes:
            raise self.unknown(agent, cube, "cubes", self.cubes)
        return f"{verb.upper()} {cube}"

    # -- rules -----------------------------------------------------------------------------

    def _constraints(self, joint: Mapping[str, Action]) -> list[Feedback]:
        feedback = []
        alice, bob = joint["Alice"].text.split(), joint["Bob"].text.split()
        for agent, words in (("Alice", alice), ("Bob", bob)):
            if words[0] in ("MOVE", "SWEEP") and self.where(words[1]) != "table":
                feedback.append(Feedback(agent, "constraint", (
                    f"{agent}: {words[1]} is already inside the {self.where(words[1])}; "
                    "choose a cube on the table.")))
        if feedback:
            return feedback
        if bob[0] == "SWEEP":
            cube = bob[1]
            at = self.state["at"]
            if at["Bob"] != cube or at["Alice"] != cube:
                missing = [a for a in ("Alice", "Bob") if at[a] != cube]
                feedback.append(Feedback("Bob", "constraint", (
                    f"Bob: SWEEP {cube} needs both robots at {cube} first; "
                    f"{' and '.join(missing)} must MOVE to {cube}.")))
            if alice[0] != "WAIT":
                feedback.append(Feedback("Alice", "constraint", (
                    f"Alice must WAIT at {cube} while Bob SWEEPs it (the dustpan must stay "
                    "still).")))
        if alice[0] == "DUMP" and not self.world.held("Alice"):
            feedback.append(Feedback("Alice", "constraint",
                                     "Alice: the dustpan is empty; SWEEP a cube into it before "
                                     "DUMP."))
        return feedback

    def _dustpan_point(self, cube: str) -> kin.Point:
        x, y = self.world.position(cube)
        return (x, y - DUSTPAN_GAP)

    def _phases(self, joint: Mapping[str, Action]) -> list[Phase]:
        first: Phase = {}
        second: Phase = {}
        for agent, action in joint.items():
            words = action.text.split()
            if words[0] == "MOVE":
                cube = words[1]
                x, y = self.world.position(cube)
                point, heading = (
                    (self._dustpan_point(cube), UP) if agent == "Alice"
                    else ((x, y + BROOM_GAP), DOWN)
                )
                first[agent] = Move(action.text, cube, point, (heading,), lowered=True,
                                    op="arrive", obj=cube)
            elif words[0] == "SWEEP":
                cube = words[1]
                px, py = self.arm("Alice").tool_point
                first[agent] = Move(action.text, "dustpan", (px, py + 2.5), (DOWN,), push=True,
                                    lowered=True, op="collect", obj=cube)
                second[agent] = Move(action.text, "home", None, op="retreat")
            elif words[0] == "DUMP":
                first[agent] = Move(action.text, "trash_bin", BIN, op="dump")
        return [first, second]

    def allowed_contacts(self, phase: Phase) -> set[frozenset[str]]:
        if any(m.op in ("collect", "retreat") for m in phase.values()):
            return {frozenset(("Alice", "Bob"))}  # the broom enters and leaves the dustpan
        return set()

    def _arrive(self, agent: str, move: Move) -> str | None:
        if move.op == "arrive":
            self.state["at"] = {**self.state["at"], agent: move.obj}
        elif move.op == "dump":
            dumped = self.world.release("Alice", onto_table=False)
            self.state["bin"] = [*self.state["bin"], *dumped]
            self.state["at"] = {**self.state["at"], "Alice": None}
        elif move.op == "collect":
            return self._collect(move.obj)
        elif move.op == "retreat":
            self.state["at"] = {**self.state["at"], agent: None}
        return None

    def _in_pocket(self, cube: str) -> bool:
        dustpan = self.arm("Alice")
        local = dustpan.tool_body.world_to_local(self.world.objects[cube].position)
        tip = dustpan.spec.lengths[-1]
        return tip <= local.x <= tip + 9.0 and abs(local.y) < 6.5

    def _collect(self, cube: str) -> str | None:
        """After the push: every cube now in the pocket rides with the dustpan."""
        self.world.settle(12)
        inside = [c for c in self.cubes if self.where(c) == "table" and self._in_pocket(c)]
        if cube not in inside:
            x, y = self.world.position(cube)
            touched = self.world.touched_by_broom()
            how = (
                "it slipped past the dustpan" if cube in touched
                else "the broom never touched it"
                + (f" (it pushed {', '.join(touched)})" if touched else "")
            )
            return (f"Execution failed: Bob's SWEEP missed {cube}: {how}; {cube} is at "
                    f"({x:.1f}, {y:.1f}), outside the dustpan.")
        for c in inside:
            self.world.hold("Alice", c, lift=False)
        return None

    # -- success ---------------------------------------------------------------------------

    def units(self) -> list[str]:
        return [c for c in self.cubes if is_target(c)]

    def completed(self) -> set[str]:
        return {
            c for c in self.state.get("bin", [])
            if is_target(c) and math.dist(self.world.position(c), BIN) <= BIN_TOLERANCE
        }

    def rewarded(self) -> set[str]:
        """ReAd's Sweep reward, +1 when a target cube is first swept into the dustpan, and
        RoCo's, +1 when the task is complete (the DUMP that puts the last target in the bin).

        Without the second term the DUMP that success needs earns nothing, and a critic
        cannot ask for it. Dumping earlier earns nothing, so the scripted expert, which dumps
        once at the end, stays optimal for any discount.
        """
        swept = {c for c in self.units() if self.where(c) != "table"}
        return swept | {COMPLETE} if self.success() else swept

    def features(self) -> np.ndarray:
        """Per cube slot (9): x, y, on table, in dustpan, in bin, is target, Alice at it, Bob
        at it; then the tool points. One flag per cube and robot, not the cube's index: a
        critic must see at a glance which cube both robots stand at (SWEEP it) or not."""
        values: list[float] = []
        at = self.state["at"]
        for i in range(MAX_CUBES):
            if i < len(self.cubes):
                c = self.cubes[i]
                where = self.where(c)
                values += [*self.norm(self.world.position(c)), float(where == "table"),
                           float(where == "dustpan"), float(where == "trash_bin"),
                           float(is_target(c)), float(at["Alice"] == c), float(at["Bob"] == c)]
            else:
                values += [0.0] * 8
        values += self.arm_features()
        return np.asarray(values, dtype=np.float32)

    # -- text ------------------------------------------------------------------------------

    def task_prompt(self) -> str:
        yellow, green, _ = LEVELS[self.level]
        return "\n".join([
            "[Task] Sweep Floor. Alice holds a dustpan (bottom edge of the table), Bob holds a "
            "broom (top edge). A trash_bin stands at the lower left corner "
            f"{fmt(BIN)}.",
            f"Goal: sweep only the yellow and green cubes ({yellow} yellow, {green} green) into "
            "the dustpan and DUMP them into the trash_bin; leave the other cubes alone.",
            "Rules: MOVE targets must be cubes (no need to MOVE to the trash_bin; DUMP works "
            "from anywhere). To SWEEP a cube, first MOVE both robots to it; then Bob SWEEPs "
            "while Alice WAITs at that cube, and the cube goes into the dustpan. The dustpan "
            "holds several cubes; Alice DUMPs it into the trash_bin.",
            "Actions: Alice: MOVE <cube>, DUMP, WAIT. Bob: MOVE <cube>, SWEEP <cube>, WAIT.",
            "Answer with one line per robot: NAME <robot> ACTION <action>.",
        ])

    def describe(self, agent: str | None = None) -> str:
        lines = []
        for a in self.possible_agents:
            x, y = self.arm(a).tool_point
            tool = self.arm(a).spec.tool
            at = self.state["at"][a]
            held = self.world.held(a)
            extra = f", containing {', '.join(held)}" if held else (", empty" if a == "Alice"
                                                                   else "")
            lines.append(f"{a}: {tool} at ({x:.1f}, {y:.1f}){extra}"
                         + (f"; at {at}" if at else "") + ".")
            dists = ", ".join(
                f"{c}: {math.dist((x, y), self.world.position(c)):.1f}"
                for c in self.cubes if self.where(c) == "table"
            )
            if dists:
                lines.append(f"  {a}'s distance to cubes: {dists}")
        for c in self.cubes:
            where = {"table": "on the table", "dustpan": "inside dustpan",
                     "trash_bin": "inside trash_bin"}[self.where(c)]
            lines.append(f"{c}: {fmt(self.world.position(c))}, {where}"
                         + (" (target)" if is_target(c) else "") + ".")
        return "\n".join(lines)

    def decorations(self):
        return [("circle", (BIN, BIN_RADIUS), (120, 120, 120), "bin")]

    def colour(self, name: str) -> tuple[int, int, int]:
        return COLOURS[name.split("_")[0]]

    def draw_order(self, name: str) -> int:
        return {"trash_bin": 0, "table": 1, "dustpan": 2}[self.where(name)]

    # -- expert ----------------------------------------------------------------------------

    def expert_joint(self) -> dict[str, Action]:
        """Both MOVE to the next target (one already there WAITs: its MOVE would be the no-op),
        Bob SWEEPs while Alice WAITs; one DUMP at the end."""
        joint = {a: self.wait_action(a) for a in self.possible_agents}
        at = self.state["at"]
        left = sorted((c for c in self.units() if self.where(c) == "table"),
                      key=lambda c: self.world.position(c)[0])
        if at["Alice"] in left and at["Alice"] == at["Bob"]:
            joint["Bob"] = self.parse("Bob", f"SWEEP {at['Bob']}")
        elif left:
            for agent in self.possible_agents:
                if at[agent] != left[0]:
                    joint[agent] = self.parse(agent, f"MOVE {left[0]}")
        elif self.world.held("Alice"):
            joint["Alice"] = self.parse("Alice", "DUMP")
        return joint
