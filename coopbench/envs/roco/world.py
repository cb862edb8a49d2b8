"""The pymunk tabletop: arms, rigid objects, grasps, collision queries and motion execution.

Seen from above, the table is the x-y plane (cm) with no gravity; `damping` stands in for
table friction. Arm links are kinematic bodies moved along joint-space paths. Objects are
dynamic bodies. What touches what is decided by shape filters, because the third dimension is
gone: raised tools and lifted objects pass over the table, lowered tools (broom, dustpan) push
objects by contact, and arms always collide with each other (checked by shape queries, since
pymunk gives no response between two kinematic bodies).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pymunk

from coopbench.envs.roco.arm import (
    ALL,
    ARM_CATEGORY,
    OBJECT_CATEGORY,
    TOOL_CATEGORY,
    Arm,
    ArmSpec,
    Config,
    Point,
)

WALL_CATEGORY = 0b1000
TABLE_FILTER = pymunk.ShapeFilter(
    categories=OBJECT_CATEGORY, mask=OBJECT_CATEGORY | TOOL_CATEGORY | WALL_CATEGORY
)
LIFTED_FILTER = pymunk.ShapeFilter(categories=OBJECT_CATEGORY, mask=0)
GRASP_FORCE = 4.0e4  # what a gripper can hold against; a heavy enough object slips
SLIP_TOLERANCE = 3.0  # cm between where a held object should be and where it is
MAX_JOINT_STEP = 0.06  # rad per physics step along a path (summed over joints)
MAX_LOADED_JOINT_STEP = 0.03  # the same for an arm that carries something: half the speed
SHARP_TURN = math.radians(15.0)  # a path turning more than this stops at the corner
BROOM_TYPE = 7  # collision type of broom heads, to record what a sweep touched


@dataclass
class Hold:
    """An object held by an arm's tool through a pivot + gear constraint pair."""

    obj: str
    constraints: tuple[pymunk.Constraint, ...]
    tool_anchor: Point  # in the tool body's frame
    obj_anchor: Point  # in the object's frame


def _record_broom_touch(arbiter: pymunk.Arbiter, space: pymunk.Space, data: dict) -> None:
    """pymunk 7 `begin` callback: remember each object body a broom head touched."""
    for shape in arbiter.shapes:
        if shape.collision_type != BROOM_TYPE:
            data.setdefault("touched", []).append(shape.body)


class World:
    """A picklable tabletop scene; `pickle.dumps(world)` is an exact snapshot."""

    def __init__(
        self,
        specs: Sequence[ArmSpec],
        size: tuple[float, float],
        *,
        dt: float = 1.0 / 60.0,
        motion_steps: int = 30,
    ) -> None:
        self.size = size
        self.dt = dt
        self.motion_steps = motion_steps
        self.substeps = 0
        self.space = pymunk.Space()
        self.space.damping = 0.2  # table friction: 80 % of the speed is lost per second
        self.space.iterations = 12
        self.contacts: dict = {"touched": []}
        self._watch_broom()
        self.arms: dict[str, Arm] = {}
        for group, spec in enumerate(specs, start=1):
            arm = Arm(spec, group)
            self.space.add(*arm.bodies, *arm.shapes)
            if spec.tool == "broom":
                for shape in arm.tool_shapes:
                    shape.collision_type = BROOM_TYPE
            self.arms[spec.name] = arm
        self.objects: dict[str, pymunk.Body] = {}
        self.object_shapes: dict[str, pymunk.Shape] = {}
        self.holds: dict[str, list[Hold]] = {name: [] for name in self.arms}
        self._add_walls(size)

    def _watch_broom(self) -> None:
        """pymunk 7 collision callback: note every object a broom head touches."""
        self.space.on_collision(BROOM_TYPE, None, begin=_record_broom_touch, data=self.contacts)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("observer", None)  # a viewer's callback is not part of the scene
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._watch_broom()  # the unpickled handler holds a copy of `contacts`, not ours

    def _add_walls(self, size: tuple[float, float]) -> None:
        """Table rims a little outside the table so pushed objects stay on it."""
        w, h, m = size[0], size[1], 4.0
        corners = [(-m, -m), (w + m, -m), (w + m, h + m), (-m, h + m)]
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            rim = pymunk.Segment(self.space.static_body, a, b, 1.0)
            rim.filter = pymunk.ShapeFilter(categories=WALL_CATEGORY, mask=OBJECT_CATEGORY)
            self.space.add(rim)

    # -- objects ---------------------------------------------------------------------------

    def add_object(
        self,
        name: str,
        vertices: Sequence[Point] | None,
        position: Point,
        angle: float = 0.0,
        *,
        radius: float = 0.0,
        mass: float = 1.0,
    ) -> None:
        """A rigid polygon (or a disc if `vertices` is None) resting on the table."""
        if vertices is None:
            moment = pymunk.moment_for_circle(mass, 0, radius)
            body = pymunk.Body(mass, moment)
            shape: pymunk.Shape = pymunk.Circle(body, radius)
        else:
            moment = pymunk.moment_for_poly(mass, vertices)
            body = pymunk.Body(mass, moment)
            shape = pymunk.Poly(body, vertices, radius=0.3)
        body.position = position
        body.angle = angle
        shape.friction = 0.5
        shape.filter = TABLE_FILTER
        self.space.add(body, shape)
        self.objects[name] = body
        self.object_shapes[name] = shape

    def position(self, name: str) -> Point:
        p = self.objects[name].position
        return (p.x, p.y)

    def set_lifted(self, name: str, lifted: bool) -> None:
        self.object_shapes[name].filter = LIFTED_FILTER if lifted else TABLE_FILTER

    def is_lifted(self, name: str) -> bool:
        return self.object_shapes[name].filter.mask == 0

    def teleport(self, name: str, position: Point, angle: float | None = None) -> None:
        body = self.objects[name]
        body.position = position
        if angle is not None:
            body.angle = angle
        body.velocity = (0.0, 0.0)
        body.angular_velocity = 0.0
        self.space.reindex_shapes_for_body(body)

    # -- holding ---------------------------------------------------------------------------

    def hold(self, agent: str, name: str, *, lift: bool = True) -> None:
        """Attach object `name` to `agent`'s tool where they are now (grasp, suction or pan)."""
        tool, body = self.arms[agent].tool_body, self.objects[name]
        anchor = self.arms[agent].tool_point if lift else (body.position.x, body.position.y)
        tool_anchor = tuple(tool.world_to_local(anchor))
        obj_anchor = tuple(body.world_to_local(anchor))
        pivot = pymunk.PivotJoint(tool, body, tool_anchor, obj_anchor)
        gear = pymunk.GearJoint(tool, body, body.angle - tool.angle, 1.0)
        for joint in (pivot, gear):
            joint.max_force = GRASP_FORCE
            joint.error_bias = 0.05**60  # a firm grip: 95 % of any drift corrected per step
            joint.collide_bodies = False
        self.space.add(pivot, gear)
        self.set_lifted(name, True)
        self.holds[agent].append(Hold(name, (pivot, gear), tool_anchor, obj_anchor))

    def release(self, agent: str, *, onto_table: bool = True) -> list[str]:
        """Detach everything `agent` holds; returns the object names."""
        names = []
        for hold in self.holds[agent]:
            self.space.remove(*hold.constraints)
            body = self.objects[hold.obj]
            body.velocity = (0.0, 0.0)
            body.angular_velocity = 0.0
            self.set_lifted(hold.obj, not onto_table)
            names.append(hold.obj)
        self.holds[agent] = []
        return names

    def held(self, agent: str) -> list[str]:
        return [h.obj for h in self.holds[agent]]

    def slip(self) -> tuple[str, str, float] | None:
        """(agent, object, distance) of the worst held object off its grip, if beyond tolerance."""
        worst = None
        for agent, holds in self.holds.items():
            tool = self.arms[agent].tool_body
            for hold in holds:
                a = tool.local_to_world(hold.tool_anchor)
                b = self.objects[hold.obj].local_to_world(hold.obj_anchor)
                gap = (a - b).length
                if gap > SLIP_TOLERANCE and (worst is None or gap > worst[2]):
                    worst = (agent, hold.obj, gap)
        return worst

    # -- queries ---------------------------------------------------------------------------

    def _owner(self, shape: pymunk.Shape) -> tuple[str, str] | None:
        """('arm', part description) or ('object', name) for a shape in this world."""
        for arm in self.arms.values():
            if shape in arm.link_shapes or shape in arm.tool_shapes:
                return ("arm", arm.part_name(shape))
        for name, obj_shape in self.object_shapes.items():
            if shape is obj_shape:
                return ("object", name)
        return None

    def place_arms(self, configs: Mapping[str, Config]) -> None:
        for agent, q in configs.items():
            arm = self.arms[agent]
            arm.place(q)
            for body in arm.bodies:
                self.space.reindex_shapes_for_body(body)

    def collisions(
        self,
        configs: Mapping[str, Config],
        *,
        lowered: Mapping[str, bool] | None = None,
        allowed: Iterable[frozenset[str]] = (),
        ignore: Iterable[str] = (),
        with_objects: bool = True,
    ) -> list[str]:
        """Contacts, as 'A-B' strings, if the arms stood at `configs` (state is left unchanged).

        Arm parts against other arms always count; a lowered tool against an object on the
        table counts unless the object is in `ignore`; pairs in `allowed` are task contacts.
        """
        saved = {a: (arm.q, arm.lowered) for a, arm in self.arms.items()}
        allowed = set(allowed)
        ignore = set(ignore)
        try:
            self.place_arms(configs)
            for agent, flag in (lowered or {}).items():
                self.arms[agent].set_lowered(flag)
            pairs: list[str] = []
            for agent, arm in self.arms.items():
                for shape in arm.shapes:
                    for info in self.space.shape_query(shape):
                        owner = self._owner(info.shape)
                        if owner is None:
                            continue
                        kind, other = owner
                        mine = arm.part_name(shape)
                        if kind == "arm" and other.split("'")[0] < agent:
                            continue  # each arm pair is reported once
                        if kind == "object" and (not with_objects or other in ignore):
                            continue
                        if frozenset((mine.split("'")[0], other.split("'")[0])) in allowed:
                            continue
                        pair = f"{mine}-{other}"
                        if pair not in pairs:
                            pairs.append(pair)
            return pairs
        finally:
            for agent, (_, flag) in saved.items():
                self.arms[agent].set_lowered(flag)
            self.place_arms({a: q for a, (q, _) in saved.items()})

    def path_collision(
        self,
        paths: Mapping[str, Sequence[Config]],
        allowed: Iterable[frozenset[str]] = (),
        others: Mapping[str, Config] | None = None,
    ) -> list[str]:
        """Arm-against-arm contacts along waypoint paths walked in step (goal excluded);
        arms not in `paths` stand at `others` (default: where they are)."""
        allowed = list(allowed)
        configs = {a: arm.q for a, arm in self.arms.items()}
        configs.update(others or {})
        for k in range(max(len(p) for p in paths.values()) - 1):
            for agent, path in paths.items():
                configs[agent] = path[min(k, len(path) - 1)]
            pairs = self.collisions(configs, allowed=allowed, with_objects=False)
            if pairs:
                return pairs
        return []

    def touched_by_broom(self) -> list[str]:
        bodies = self.contacts.get("touched", [])
        return [n for n, b in self.objects.items() if any(b is t for t in bodies)]

    def clear_touches(self) -> None:
        self.contacts["touched"] = []

    # -- physics ---------------------------------------------------------------------------

    def move(self, paths: Mapping[str, Sequence[Config]]) -> tuple[str, str] | None:
        """Drive the arms along waypoint paths together, smooth in time (ease in, ease out).

        Returns (agent, reason) if a held object slipped off its grip on the way.
        """
        points = {a: [self.arms[a].q, *p] for a, p in paths.items()}
        longest = max(_length(p) for p in points.values())
        step = MAX_LOADED_JOINT_STEP if any(self.holds[a] for a in paths) else MAX_JOINT_STEP
        n = max(self.motion_steps, math.ceil(longest / step))  # long paths go slower
        timings = {a: _timing(p) for a, p in points.items()}
        for i in range(1, n + 1):
            for agent, path in points.items():
                self.arms[agent].drive(_at_time(path, timings[agent], i / n), self.dt)
            self.step()
            slipped = self.slip()
            if slipped is not None:
                agent, obj, gap = slipped
                return agent, (
                    f"Execution failed: {obj} slipped out of {agent}'s "
                    f"{self.arms[agent].spec.tool} while moving ({gap:.1f} cm off the grip)."
                )
        self.place_arms({a: p[-1] for a, p in paths.items()})  # land exactly, no drift
        return None

    def step(self) -> None:
        self.space.step(self.dt)
        self.substeps += 1
        observer = getattr(self, "observer", None)
        if observer is not None:
            observer()

    def settle(self, steps: int = 20) -> None:
        """Let released or pushed objects come to rest, then stop them exactly."""
        for arm in self.arms.values():
            for body in arm.bodies:
                body.velocity = (0.0, 0.0)
                body.angular_velocity = 0.0
        for _ in range(steps):
            self.step()
        for body in self.objects.values():
            body.velocity = (0.0, 0.0)
            body.angular_velocity = 0.0


def distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _length(path: Sequence[Config]) -> float:
    return sum(math.dist(a, b) for a, b in zip(path, path[1:], strict=False))


def _turn(a: Config, b: Config, c: Config) -> float:
    """Angle (rad) between segments a->b and b->c in joint space (0 if either is empty)."""
    u = [y - x for x, y in zip(a, b, strict=True)]
    v = [y - x for x, y in zip(b, c, strict=True)]
    nu, nv = math.hypot(*u), math.hypot(*v)
    if nu == 0 or nv == 0:
        return 0.0
    cos = sum(x * y for x, y in zip(u, v, strict=True)) / (nu * nv)
    return math.acos(max(-1.0, min(1.0, cos)))


def _timing(path: Sequence[Config]) -> list[tuple[int, int, float]]:
    """Pieces (first, last waypoint index, share of the time) between sharp corners.

    Each piece eases in and out on its own, so the arm comes to rest at a sharp corner
    (typical of RRT paths) instead of turning at full speed, which would fling a held
    object off its grip; time is shared by joint-space length, so the peak speed is the
    same as for one smooth piece.
    """
    corners = [k for k in range(1, len(path) - 1)
               if _turn(path[k - 1], path[k], path[k + 1]) > SHARP_TURN]
    bounds = [0, *corners, len(path) - 1]
    total = _length(path)
    pieces = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        share = _length(path[lo:hi + 1]) / total if total > 0 else 1.0 / (len(bounds) - 1)
        pieces.append((lo, hi, share))
    return pieces


def _at_time(path: Sequence[Config], pieces: list[tuple[int, int, float]], t: float) -> Config:
    """Where the arm is at time fraction `t` of the motion (eased within each piece)."""
    k, start = 0, 0.0
    while k < len(pieces) - 1 and t > start + pieces[k][2]:
        start += pieces[k][2]
        k += 1
    lo, hi, share = pieces[k]
    f = min(1.0, (t - start) / share) if share > 0 else 1.0
    return _along(path[lo:hi + 1], f * f * (3.0 - 2.0 * f))


def _along(path: Sequence[Config], s: float) -> Config:
    """The configuration a fraction `s` of the way along `path`, by joint-space length.

    Timed by length, not one equal time slice per segment: a short segment after a long one
    would otherwise brake the tool abruptly and shake held objects off their grips.
    """
    goal = _length(path) * s
    for a, b in zip(path, path[1:], strict=False):
        seg = math.dist(a, b)
        if goal <= seg and seg > 0:
            f = goal / seg
            return tuple(x + (y - x) * f for x, y in zip(a, b, strict=True))
        goal -= seg
    return tuple(path[-1])


__all__ = ["ALL", "ARM_CATEGORY", "World", "distance"]
