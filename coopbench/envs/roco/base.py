"""What the three RoCo tasks share: verification in RoCo's order, execution, rewind, snapshots.

A task turns a joint action into *phases*: in each phase every acting robot moves its tool to
one target (pick, place, sweep, ...) at the same time. Verification walks those phases in
RoCo's order (task constraints -> reachability -> inverse kinematics -> collision at the goal
configuration) and stops at the first stage that fails. Execution then drives the arms in
physics along collision-checked joint-space paths; if something still goes wrong (a path is
blocked, an object slips, a sweep misses), the scene is rewound to the start of the step.
"""

from __future__ import annotations

import math
import pickle
import random
import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from coopbench.core.errors import CoopbenchError
from coopbench.core.types import Action, Feedback, ParseError
from coopbench.envs.base import VocabularyEnv
from coopbench.envs.roco import arm as kin
from coopbench.envs.roco.registration import DEFAULT_JITTER
from coopbench.envs.roco.world import World


@dataclass(frozen=True)
class Move:
    """One robot's motion within a phase: bring the tool point to `point` (None: home)."""

    label: str  # the action text, for messages
    target: str  # what the tool goes to (object, panel, bin, home)
    point: kin.Point | None
    headings: tuple[float, ...] | None = None  # None: any heading will do
    push: bool = False  # tool lowered while moving (a sweep)
    lowered: bool = False  # tool lowered once there
    op: str = ""  # what happens on arrival (task-specific)
    obj: str = ""


Phase = dict[str, Move]
Plan = list[dict[str, tuple[Move, kin.Config]]]


def fmt(point: kin.Point) -> str:
    return f"({point[0]:.1f}, {point[1]:.1f})"


class RocoEnv(VocabularyEnv):
    """Base class of `roco/*` envs; subclasses define the scene, the rules and the text."""

    metadata = {"name": "roco_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}
    task: str = ""
    levels: tuple[str, ...] = ()
    size: tuple[float, float] = (128.0, 80.0)
    features_version = "roco-1"

    def __init__(
        self,
        level: str,
        jitter: float = DEFAULT_JITTER,  # 0: the level's fixed scene for every seed
        max_steps: int = 15,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode)
        if level not in self.levels:
            raise CoopbenchError(
                f"unknown {self.task} level {level!r}; choose one of {', '.join(self.levels)}"
            )
        if jitter < 0 or max_steps < 1:
            raise CoopbenchError("jitter must be >= 0 and max_steps >= 1")
        self.level = level
        self.jitter = float(jitter)
        self.max_steps = int(max_steps)
        self.world: World | None = None
        self.state: dict[str, Any] = {}
        self._reset(None, None)  # a scene exists before the first reset (for describe/render)

    # -- to implement ----------------------------------------------------------------------

    @abstractmethod
    def arm_specs(self) -> list[kin.ArmSpec]: ...

    @abstractmethod
    def _build_scene(self) -> None:
        """Add the level's objects to `self.world` (through `self._jittered`) and set state."""

    @abstractmethod
    def _canonical(self, agent: str, text: str) -> str:
        """RoCo action text -> canonical vocabulary text, or ParseError with the reason."""

    @abstractmethod
    def _constraints(self, joint: Mapping[str, Action]) -> list[Feedback]: ...

    @abstractmethod
    def _phases(self, joint: Mapping[str, Action]) -> list[Phase]: ...

    @abstractmethod
    def _arrive(self, agent: str, move: Move) -> str | None:
        """Apply `move.op` after arriving; return a reason if it failed physically."""

    @abstractmethod
    def completed(self) -> set[str]:
        """Units done now (cubes in the bin, items stacked in order, cubes on target)."""

    def rewarded(self) -> set[str]:
        """Units that earn +1 the first time they appear here; by default the completed ones."""
        return self.completed()

    @abstractmethod
    def decorations(self) -> list[tuple[str, Any, tuple[int, int, int], str]]:
        """Static things to draw: (kind 'rect'|'circle', geometry, colour, label)."""

    # -- scene -----------------------------------------------------------------------------

    def _reset(self, seed: int | None, options: dict | None) -> None:
        self.world = World(self.arm_specs(), self.size)
        self.state = {"done": [], "history": []}
        self._build_scene()
        self.world.settle(2)
        self.state["done"] = sorted(self.rewarded())

    def _jittered(self, point: kin.Point, angle: float = 0.0) -> tuple[kin.Point, float]:
        """The level's position, moved up to 2*jitter cm and turned up to 10*jitter degrees."""
        if self.jitter <= 0:
            return point, angle
        rng = self.np_random
        r = 2.0 * self.jitter * math.sqrt(float(rng.random()))
        t = 2.0 * math.pi * float(rng.random())
        turn = math.radians(10.0 * self.jitter) * (2.0 * float(rng.random()) - 1.0)
        return (point[0] + r * math.cos(t), point[1] + r * math.sin(t)), angle + turn

    def arm(self, agent: str) -> kin.Arm:
        assert self.world is not None
        return self.world.arms[agent]

    # -- parsing ---------------------------------------------------------------------------

    def object_names(self) -> list[str]:
        assert self.world is not None
        return list(self.world.objects)

    def _tokens(self, text: str) -> str:
        """Lower-case, RoCo prefixes dropped, multi-word object names joined by underscores."""
        text = text.strip().strip("`'\".,;:!").lower()
        text = re.sub(r"^\s*name\s+\w+\s+action\s+", "", text)
        text = re.sub(r"[(),;:.]", " ", text)
        for name in [*self.object_names(), *self.extra_names()]:
            spaced = r"[\s_-]*".join(re.escape(p) for p in re.split(r"_", name))
            text = re.sub(rf"(?<![a-z0-9_]){spaced}(?![a-z0-9_])", name, text)
            spaced = r"[\s_-]*".join(re.escape(p) for p in re.findall(r"[a-z]+|\d+", name))
            text = re.sub(rf"(?<![a-z0-9_]){spaced}(?![a-z0-9_])", name, text)
        return " ".join(text.split())

    def extra_names(self) -> list[str]:
        """Names that are not objects but may appear in actions (panels, cutting_board...)."""
        return []

    def parse(self, agent: str, text: str) -> Action:
        """RoCo action text -> Action; ParseError says what is wrong in RoCo's words."""
        if agent not in self.possible_agents:
            raise ParseError(
                f"There is no robot named {agent!r}; the robots are "
                f"{', '.join(self.possible_agents)}.",
                agent=agent,
            )
        canonical = self._canonical(agent, self._tokens(text))
        index = self._lookup(agent, canonical)
        if index is None:
            raise ParseError(
                f"{agent}: {text.strip()!r} is not an action of {agent}; "
                f"choose one of: {', '.join(self.action_options(agent))}.",
                agent=agent,
            )
        return self.action(agent, index)

    def unknown(self, agent: str, word: str, kinds: str, known: Sequence[str]) -> ParseError:
        return ParseError(
            f"{agent}: unknown object {word!r}; the {kinds} are {', '.join(known)}.", agent=agent
        )

    # -- verification ----------------------------------------------------------------------

    def _full(self, joint: Mapping[str, Action]) -> dict[str, Action]:
        full = {a: self.to_action(a, joint[a]) for a in self.possible_agents if a in joint}
        for agent in self.possible_agents:
            full.setdefault(agent, self.wait_action(agent))
        return full

    def allowed_contacts(self, phase: Phase) -> set[frozenset[str]]:
        """Arm pairs allowed to touch in this phase (e.g. broom inside the dustpan)."""
        return set()

    def verify(self, joint: Mapping[str, Action]) -> list[Feedback]:
        return self._compile(joint)[0]

    def _compile(self, joint: Mapping[str, Action]) -> tuple[list[Feedback], Plan]:
        joint = self._full(joint)
        feedback = self._constraints(joint)
        if feedback:
            return feedback, []
        phases = self._phases(joint)
        feedback = [
            Feedback(
                agent,
                "reach",
                f"Reachability failed: out of reach: {agent} {fmt(move.point)} — {agent} cannot "
                f"reach {move.target} for {move.label!r}.",
            )
            for phase in phases
            for agent, move in phase.items()
            if move.point is not None and not self.arm(agent).spec.in_reach(move.point)
        ]
        if feedback:
            return feedback, []
        plan: Plan = []
        current = {a: self.arm(a).q for a in self.possible_agents}
        for phase in phases:
            step = {}
            for agent, move in phase.items():
                q = self._solve(agent, move, current[agent])
                if q is None:
                    feedback.append(
                        Feedback(
                            agent,
                            "ik",
                            f"IK failed on {agent}: no joint angles within {agent}'s limits put "
                            f"the {self.arm(agent).spec.tool} at {move.target} {fmt(move.point)} "
                            f"for {move.label!r}.",
                        )
                    )
                    continue
                step[agent] = (move, q)
                current[agent] = q
            plan.append(step)
        if feedback:
            return feedback, []
        feedback = self._goal_collisions(plan)
        return feedback, (plan if not feedback else [])

    def _solve(self, agent: str, move: Move, near: kin.Config) -> kin.Config | None:
        spec = self.arm(agent).spec
        if move.point is None:
            return spec.home
        headings = move.headings or tuple(kin.free_headings(spec, move.point))
        return kin.inverse(spec, move.point, headings, near)

    def _goal_collisions(self, plan: Plan) -> list[Feedback]:
        assert self.world is not None
        configs = {a: self.arm(a).q for a in self.possible_agents}
        lowered = {a: self.arm(a).lowered for a in self.possible_agents}
        for step in plan:
            phase = {a: m for a, (m, _) in step.items()}
            for agent, (move, q) in step.items():
                configs[agent] = q
                lowered[agent] = move.lowered or move.push
            pairs = self.world.collisions(
                configs,
                lowered=lowered,
                allowed=self.allowed_contacts(phase),
                ignore={m.obj for m in phase.values()} | {m.target for m in phase.values()},
            )
            if pairs:
                actors = [a for a in self.possible_agents if any(p.startswith(a) for p in pairs)]
                doing = "; ".join(f"{a} {m.label!r} -> {m.target}" for a, m in phase.items())
                return [
                    Feedback(
                        actors[0] if actors else None,
                        "collision",
                        f"collision detected: pairs {', '.join(pairs)} (at the goal of {doing}).",
                    )
                ]
        return []

    # -- execution -------------------------------------------------------------------------

    def _apply(self, joint: dict[str, Action]) -> tuple[float, list[Feedback]]:
        feedback, plan = self._compile(joint)
        if feedback:
            return 0.0, feedback
        start = pickle.dumps((self.world, self.state))
        self.world, self.state = pickle.loads(start)  # run on a fresh copy: replays are exact
        self.world.observer = self._observer
        self.world.clear_touches()
        problem = self._execute(plan)
        if problem is not None:
            self.world, self.state = pickle.loads(start)
            agent, message = problem
            return 0.0, [Feedback(agent, "execution", message + " The scene was rewound.")]
        self.state["history"].append({a: joint[a].text for a in joint})
        done = self.rewarded()
        new = [u for u in sorted(done) if u not in self.state["done"]]
        self.state["done"] = sorted(set(self.state["done"]) | done)
        return float(len(new)), []

    def _execute(self, plan: Plan) -> tuple[str | None, str] | None:
        assert self.world is not None
        for step in plan:
            if not step:
                continue
            phase = {a: m for a, (m, _) in step.items()}
            for agent, move in phase.items():
                self.arm(agent).set_lowered(move.push)
            goals = {a: q for a, (_, q) in step.items()}
            problem = self._drive(goals, phase)
            if problem is not None:
                return problem
            for agent, move in phase.items():
                self.arm(agent).set_lowered(move.lowered)
            for agent, move in phase.items():
                reason = self._arrive(agent, move)
                if reason:
                    return agent, reason
            self.world.settle(6)
        return None

    def _drive(self, goals: dict[str, kin.Config], phase: Phase) -> tuple[str | None, str] | None:
        """Move along a collision-free path: tool-straight or joint-straight, together or one
        robot at a time, else one at a time along RRT-Connect paths. Fails if all are blocked."""
        assert self.world is not None
        movers = [a for a in self.possible_agents if a in goals and goals[a] != self.arm(a).q]
        if not movers:
            return None
        allowed = self.allowed_contacts(phase)
        blocked: list[str] = []
        for segments in self._path_options(movers, goals):
            configs = {a: self.arm(a).q for a in self.possible_agents}
            planned = []
            for seg in segments:
                paths = {
                    a: self._path(a, configs, g, mode, allowed) for a, (g, mode) in seg.items()
                }
                pairs = (
                    ["no RRT path"] if any(p is None for p in paths.values())
                    else self.world.path_collision(paths, allowed, configs)
                )
                if pairs:
                    blocked = blocked or pairs
                    break
                planned.append(paths)
                configs.update({a: g for a, (g, _) in seg.items()})
            else:
                for paths in planned:
                    slipped = self.world.move(paths)
                    if slipped:
                        return slipped
                return None
        who = next((a for a in self.possible_agents if any(p.startswith(a) for p in blocked)), None)
        doing = "; ".join(f"{a} {m.label!r}" for a, m in phase.items())
        return who, f"Execution failed: path blocked, {', '.join(blocked)} on the way ({doing})."

    def _path_options(self, movers: list[str], goals: dict[str, kin.Config]) -> list[list[dict]]:
        """Candidate motions: lists of segments {agent: (goal, mode)} run one after another."""
        options = [
            [{a: (goals[a], "tool") for a in movers}],
            [{a: (goals[a], "joint") for a in movers}],
        ]
        if len(movers) > 1:
            options.append([{a: (goals[a], "tool")} for a in movers])
            options.append([{a: (goals[a], "tool")} for a in reversed(movers)])
        options.append([{a: (goals[a], "rrt")} for a in movers])
        if len(movers) > 1:
            options.append([{a: (goals[a], "rrt")} for a in reversed(movers)])
            homes = [{a: (self.arm(a).spec.home, "rrt")} for a in movers]
            options.append([*homes, *({a: (goals[a], "rrt")} for a in movers)])
            options.append([*homes, *({a: (goals[a], "rrt")} for a in reversed(movers))])
        return options

    def _path(
        self,
        agent: str,
        configs: dict[str, kin.Config],
        goal: kin.Config,
        mode: str,
        allowed: set[frozenset[str]],
    ) -> list | None:
        spec, start = self.arm(agent).spec, configs[agent]
        if mode == "rrt":  # the other arms stand still meanwhile
            def free(q: kin.Config) -> bool:
                return not self.world.collisions({**configs, agent: q}, allowed=allowed,
                                                 with_objects=False)

            rng = random.Random(f"{agent}{start}{goal}")  # deterministic per query
            return kin.plan_rrt(spec, start, goal, free, rng)
        path = kin.tool_path(spec, start, goal, 10) if mode == "tool" else None
        return path or kin.joint_path(start, goal, 10)

    # -- bookkeeping -----------------------------------------------------------------------

    def success(self) -> bool:
        return self.completed() >= set(self.units())

    @abstractmethod
    def units(self) -> list[str]:
        """All units the task needs (the success predicate is: all completed)."""

    def _snapshot_state(self) -> bytes:
        return pickle.dumps((self.world, self.state))

    def _restore_state(self, state: bytes) -> None:
        self.world, self.state = pickle.loads(state)

    def _observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(0.0, 1.0, shape=self.features().shape, dtype=np.float32)

    def observe(self, agent: str) -> np.ndarray:
        return self.features()

    def norm(self, point: kin.Point) -> tuple[float, float]:
        return (
            float(np.clip(point[0] / self.size[0], 0.0, 1.0)),
            float(np.clip(point[1] / self.size[1], 0.0, 1.0)),
        )

    def arm_features(self) -> list[float]:
        """Tool point of every robot, normalised to the table."""
        return [v for a in self.possible_agents for v in self.norm(self.arm(a).tool_point)]

    def render(self) -> np.ndarray:
        from coopbench.envs.roco.render import draw

        return draw(self)

    def film(self, every: int = 8) -> list[np.ndarray]:
        """Record a frame every `every` physics substeps of later steps (for animations).

        Returns the list that fills up; frames never change the simulation.
        """
        frames: list[np.ndarray] = []
        count = [0]

        def observe() -> None:
            count[0] += 1
            if count[0] % every == 0:
                frames.append(self.render())

        self._observer = observe
        return frames

    _observer = None

    def colour(self, name: str) -> tuple[int, int, int]:
        return (128, 128, 128)

    def draw_order(self, name: str) -> int:
        """Objects drawn later appear on top (e.g. higher layers of a sandwich)."""
        return 0

    def robots_text(self) -> str:
        lines = []
        for agent in self.possible_agents:
            spec = self.arm(agent).spec
            x, y = self.arm(agent).tool_point
            held = self.world.held(agent) if self.world else []
            holding = f"holding {', '.join(held)}" if held else "holding nothing"
            lines.append(
                f"{agent}: {spec.tool} at ({x:.1f}, {y:.1f}), base at {fmt(spec.base)}, {holding}."
            )
        return "\n".join(lines)
