"""Planar three-link arms: forward and inverse kinematics with joint limits, as pymunk bodies.

An arm is two links (shoulder, elbow) plus a short tool link (wrist) fixed on a base at the
table edge. Joint angles are relative: link 1 points at `base_angle + q1`, link 2 at that plus
`q2`, the tool link at that plus `q3`. The tool's reference point (gripper centre, suction
cup, broom head, dustpan pocket) lies `tool_offset` beyond the tip of the tool link.

Inverse kinematics is analytic: choose the tool heading, which fixes the wrist, then solve the
two-link triangle for both elbow branches and keep solutions inside the joint limits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pymunk

Config = tuple[float, float, float]
Point = tuple[float, float]

ARM_CATEGORY = 0b0001  # links and tools, for arm-versus-arm checks
OBJECT_CATEGORY = 0b0010  # objects resting on the table
TOOL_CATEGORY = 0b0100  # a tool lowered onto the table (broom head, dustpan)
ALL = 0xFFFFFFFF


@dataclass(frozen=True)
class ArmSpec:
    """What an arm is: geometry, limits, tool, home pose and reach box (all in cm / radians)."""

    name: str
    base: Point
    base_angle: float
    lengths: tuple[float, float, float]
    limits: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    tool: str  # gripper | suction | broom | dustpan
    home: Config
    reach: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax of the tool point
    tool_offset: float = 0.0
    link_radius: float = 2.0

    def in_reach(self, point: Point) -> bool:
        xmin, xmax, ymin, ymax = self.reach
        return xmin <= point[0] <= xmax and ymin <= point[1] <= ymax


def wrap(angle: float) -> float:
    """Angle in (-pi, pi]."""
    return math.atan2(math.sin(angle), math.cos(angle))


def forward(spec: ArmSpec, q: Sequence[float]) -> list[tuple[Point, float]]:
    """(start point, absolute angle) of each link, then (tool point, tool heading)."""
    x, y = spec.base
    angle = spec.base_angle
    frames = []
    for length, qi in zip(spec.lengths, q, strict=True):
        angle += qi
        frames.append(((x, y), angle))
        x += length * math.cos(angle)
        y += length * math.sin(angle)
    frames.append(
        ((x + spec.tool_offset * math.cos(angle), y + spec.tool_offset * math.sin(angle)), angle)
    )
    return frames


def tool_point(spec: ArmSpec, q: Sequence[float]) -> Point:
    return forward(spec, q)[-1][0]


def within_limits(spec: ArmSpec, q: Sequence[float]) -> bool:
    return all(lo - 1e-9 <= qi <= hi + 1e-9 for qi, (lo, hi) in zip(q, spec.limits, strict=True))


def solve(spec: ArmSpec, point: Point, heading: float) -> list[Config]:
    """Joint configurations within limits that put the tool point at `point` facing `heading`."""
    l1, l2, l3 = spec.lengths
    reach = l3 + spec.tool_offset
    wx = point[0] - reach * math.cos(heading) - spec.base[0]
    wy = point[1] - reach * math.sin(heading) - spec.base[1]
    d2 = wx * wx + wy * wy
    cos_q2 = (d2 - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if not -1.0 <= cos_q2 <= 1.0:
        return []
    solutions = []
    for sign in (1.0, -1.0):
        q2 = sign * math.acos(cos_q2)
        q1 = wrap(
            math.atan2(wy, wx)
            - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
            - spec.base_angle
        )
        q3 = wrap(heading - spec.base_angle - q1 - q2)
        q = (q1, q2, q3)
        if within_limits(spec, q):
            solutions.append(q)
    return solutions


def inverse(
    spec: ArmSpec, point: Point, headings: Iterable[float], near: Sequence[float]
) -> Config | None:
    """The solution over all `headings` that moves the joints least from `near`.

    Distance is measured without wrapping (joints move linearly between their limits); a
    small penalty prefers headings earlier in the given order.
    """
    best, best_cost = None, math.inf
    for rank, heading in enumerate(headings):
        for q in solve(spec, point, heading):
            cost = sum(abs(a - b) for a, b in zip(q, near, strict=True)) + 0.05 * rank
            if cost < best_cost:
                best, best_cost = q, cost
    return best


def joint_path(start: Sequence[float], goal: Sequence[float], n: int) -> list[Config]:
    """`n` configurations from `start` (excluded) to `goal` (included), straight in joint space."""
    return [
        tuple(a + (b - a) * k / n for a, b in zip(start, goal, strict=True))
        for k in range(1, n + 1)
    ]


def tool_path(
    spec: ArmSpec, start: Sequence[float], goal: Sequence[float], n: int
) -> list[Config] | None:
    """`n` configurations moving the tool point along a straight line to `goal`'s tool pose.

    Each waypoint is solved by IK, continuing the branch of the previous one; None if a
    waypoint is out of reach or the branch would have to jump (then use `joint_path`).
    """
    (x0, y0), h0 = forward(spec, start)[-1]
    (x1, y1), h1 = forward(spec, goal)[-1]
    turn = wrap(h1 - h0)
    path: list[Config] = []
    previous = tuple(start)
    for k in range(1, n):
        t = k / n
        point = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
        q = inverse(spec, point, [h0 + turn * t], previous)
        if q is None or sum(abs(a - b) for a, b in zip(q, previous, strict=True)) > 1.2:
            return None
        path.append(q)
        previous = q
    if sum(abs(a - b) for a, b in zip(goal, previous, strict=True)) > 1.2:
        return None
    return [*path, tuple(goal)]


def free_headings(spec: ArmSpec, point: Point, steps: int = 8) -> list[float]:
    """Headings to try for a tool whose orientation does not matter: radial first, then fanning."""
    radial = math.atan2(point[1] - spec.base[1], point[0] - spec.base[0])
    fan = [radial]
    for k in range(1, steps + 1):
        fan += [radial + k * math.radians(12), radial - k * math.radians(12)]
    return fan


class Arm:
    """An arm's kinematic link bodies in a pymunk space; `q` is its current configuration."""

    def __init__(self, spec: ArmSpec, group: int) -> None:
        self.spec = spec
        self.q: Config = spec.home
        self.lowered = False
        self.bodies = [pymunk.Body(body_type=pymunk.Body.KINEMATIC) for _ in spec.lengths]
        self.link_shapes: list[pymunk.Shape] = []
        arm_filter = pymunk.ShapeFilter(group=group, categories=ARM_CATEGORY, mask=ARM_CATEGORY)
        for body, length in zip(self.bodies, spec.lengths, strict=True):
            shape = pymunk.Segment(body, (0, 0), (length, 0), spec.link_radius)
            shape.filter = arm_filter
            self.link_shapes.append(shape)
        self.tool_shapes = self._tool_shapes(group)
        self.place(self.q)

    def _tool_shapes(self, group: int) -> list[pymunk.Shape]:
        body, tip = self.bodies[-1], self.spec.lengths[-1]
        kind = self.spec.tool
        if kind == "broom":  # a head across the link, pushing along the heading
            shapes = [pymunk.Segment(body, (tip, -5.0), (tip, 5.0), 1.0)]
        elif kind == "dustpan":  # a back wall and two side walls: a pocket open ahead
            shapes = [
                pymunk.Segment(body, (tip, -7.5), (tip, 7.5), 1.0),
                pymunk.Segment(body, (tip, -7.5), (tip + 9.0, -7.5), 1.0),
                pymunk.Segment(body, (tip, 7.5), (tip + 9.0, 7.5), 1.0),
            ]
        else:  # gripper fingers / suction cup
            shapes = [pymunk.Circle(body, 3.0, (tip + self.spec.tool_offset, 0.0))]
        for shape in shapes:
            shape.filter = pymunk.ShapeFilter(
                group=group, categories=ARM_CATEGORY, mask=ARM_CATEGORY
            )
            shape.friction = 0.4
        return shapes

    @property
    def shapes(self) -> list[pymunk.Shape]:
        return self.link_shapes + self.tool_shapes

    def part_name(self, shape: pymunk.Shape) -> str:
        if shape in self.tool_shapes:
            return f"{self.spec.name}'s {self.spec.tool}"
        return f"{self.spec.name}'s link{self.link_shapes.index(shape) + 1}"

    def set_lowered(self, lowered: bool) -> None:
        """A lowered tool touches objects on the table; a raised one passes over them."""
        self.lowered = lowered
        mask = ARM_CATEGORY | (OBJECT_CATEGORY if lowered else 0)
        categories = ARM_CATEGORY | (TOOL_CATEGORY if lowered else 0)
        for shape in self.tool_shapes:
            shape.filter = pymunk.ShapeFilter(
                group=shape.filter.group, categories=categories, mask=mask
            )

    def frames(self, q: Sequence[float]) -> list[tuple[Point, float]]:
        return forward(self.spec, q)[:-1]

    def place(self, q: Sequence[float]) -> None:
        """Teleport the links to `q` (no physics); the caller reindexes the space."""
        self.q = (float(q[0]), float(q[1]), float(q[2]))
        for body, (pos, angle) in zip(self.bodies, self.frames(q), strict=True):
            body.position = pos
            body.angle = angle
            body.velocity = (0.0, 0.0)
            body.angular_velocity = 0.0

    def drive(self, q: Sequence[float], dt: float) -> None:
        """Set link velocities so that one physics step of `dt` lands them on `q`."""
        for body, (pos, angle) in zip(self.bodies, self.frames(q), strict=True):
            body.velocity = ((pos[0] - body.position.x) / dt, (pos[1] - body.position.y) / dt)
            body.angular_velocity = (angle - body.angle) / dt
        self.q = (float(q[0]), float(q[1]), float(q[2]))

    @property
    def tool_point(self) -> Point:
        return tool_point(self.spec, self.q)

    @property
    def tool_body(self) -> pymunk.Body:
        return self.bodies[-1]


def make_spec(
    name: str,
    base: Point,
    base_angle_deg: float,
    lengths: tuple[float, float, float],
    tool: str,
    home_point: Point,
    reach: tuple[float, float, float, float],
    *,
    tool_offset: float = 0.0,
    home_heading_deg: float | None = None,
    limits_deg: tuple[float, float, float] = (100.0, 150.0, 120.0),
    centre: Point = (64.0, 40.0),
) -> ArmSpec:
    """An ArmSpec whose home configuration is solved from a resting tool point."""
    base_angle = math.radians(base_angle_deg)
    limits = tuple((-math.radians(v), math.radians(v)) for v in limits_deg)
    draft = ArmSpec(name, base, base_angle, lengths, limits, tool, (0.0, 0.0, 0.0), reach,
                    tool_offset)
    headings = (
        [math.radians(home_heading_deg)]
        if home_heading_deg is not None
        else free_headings(draft, home_point)
    )
    # home tucks the elbow away from the table's middle, out of the other robots' way
    solutions = [q for h in headings for q in solve(draft, home_point, h)]
    if not solutions:
        raise ValueError(f"{name}: no home configuration reaches {home_point}")
    home = max(solutions, key=lambda q: math.dist(forward(draft, q)[1][0], centre))
    return ArmSpec(name, base, base_angle, lengths, limits, tool, home, reach, tool_offset)


def plan_rrt(
    spec: ArmSpec,
    start: Sequence[float],
    goal: Sequence[float],
    free: Callable[[Config], bool],
    rng: random.Random,
    *,
    iterations: int = 300,
    step: float = 0.3,
) -> list[Config] | None:
    """RRT-Connect in joint space within the limits; `free(q)` says whether q is collision-free.

    Returns waypoints after `start` ending at `goal`, shortcut-smoothed, or None.
    """
    start, goal = tuple(start), tuple(goal)
    trees: list[dict[Config, Config | None]] = [{start: None}, {goal: None}]

    def extend(tree: dict, target: Config) -> Config | None:
        near = min(tree, key=lambda q: sum((a - b) ** 2 for a, b in zip(q, target, strict=True)))
        gap = math.dist(near, target)
        new = target if gap <= step else tuple(
            a + (b - a) * step / gap for a, b in zip(near, target, strict=True)
        )
        if not _segment_free(near, new, free):
            return None
        tree[new] = near
        return new

    for _ in range(iterations):
        sample = tuple(rng.uniform(lo, hi) for lo, hi in spec.limits)
        new = extend(trees[0], sample)
        if new is not None:
            reached = extend(trees[1], new)
            while reached is not None and reached != new:
                reached = extend(trees[1], new)
            if reached == new:
                a_side = _branch(trees[0], new)
                b_side = _branch(trees[1], new)
                path = a_side[::-1] + b_side[1:]
                if path[0] != start:
                    path = path[::-1]
                return _shortcut(path, free)[1:]
        trees.reverse()
    return None


def _branch(tree: dict, node: Config) -> list[Config]:
    out = [node]
    while tree[out[-1]] is not None:
        out.append(tree[out[-1]])
    return out


def _segment_free(a: Config, b: Config, free: Callable[[Config], bool]) -> bool:
    n = max(1, int(math.dist(a, b) / 0.1))
    return all(
        free(tuple(x + (y - x) * k / n for x, y in zip(a, b, strict=True)))
        for k in range(1, n + 1)
    )


def _shortcut(path: list[Config], free: Callable[[Config], bool]) -> list[Config]:
    """Greedily skip waypoints while the straight joint segment stays free."""
    out = [path[0]]
    i = 0
    while i < len(path) - 1:
        j = len(path) - 1
        while j > i + 1 and not _segment_free(path[i], path[j], free):
            j -= 1
        out.append(path[j])
        i = j
    return out
