"""roco arms: inverse kinematics round-trips within limits, path checks see arms crossing."""

import math
import random

import pytest

from coopbench.envs.roco import arm as kin
from coopbench.envs.roco.world import World

SPEC = kin.make_spec("Alice", (32.0, -4.0), 90.0, (30.0, 26.0, 8.0), "gripper", (32.0, 16.0),
                     (6.0, 58.0, 30.0, 60.0))


@pytest.mark.parametrize("point", [(16.0, 44.0), (48.0, 44.0), (32.0, 30.0), (50.0, 54.0)])
def test_inverse_kinematics_round_trips_within_limits(point):
    q = kin.inverse(SPEC, point, kin.free_headings(SPEC, point), SPEC.home)
    assert q is not None and kin.within_limits(SPEC, q)
    assert math.dist(kin.tool_point(SPEC, q), point) < 1e-9


def test_points_beyond_the_links_or_the_limits_have_no_solution():
    assert kin.inverse(SPEC, (8.0, 59.0), kin.free_headings(SPEC, (8.0, 59.0)), SPEC.home) is None
    assert kin.solve(SPEC, (32.0, 40.0), math.pi / 2)  # tool pointing away: fine
    assert kin.solve(SPEC, (32.0, 40.0), -math.pi / 2) == []  # pointing back: wrist limit


def test_tool_path_is_straight_and_rrt_avoids_a_blocked_region():
    start = kin.inverse(SPEC, (16.0, 44.0), kin.free_headings(SPEC, (16.0, 44.0)), SPEC.home)
    goal = kin.inverse(SPEC, (48.0, 44.0), kin.free_headings(SPEC, (48.0, 44.0)), start)
    path = kin.tool_path(SPEC, start, goal, 10)
    assert path is not None and path[-1] == goal
    assert all(abs(kin.tool_point(SPEC, q)[1] - 44.0) < 1e-6 for q in path)

    def free(q):  # forbid the tool from the middle of the straight route
        return math.dist(kin.tool_point(SPEC, q), (32.0, 44.0)) > 6.0

    assert not all(free(q) for q in path)
    detour = kin.plan_rrt(SPEC, start, goal, free, random.Random(0))
    assert detour is not None and detour[-1] == tuple(goal) and all(free(q) for q in detour)


def test_path_check_reports_two_arms_crossing():
    across = kin.make_spec("Bob", (64.0, 84.0), -90.0, (30.0, 26.0, 8.0), "gripper",
                           (64.0, 64.0), (38.0, 90.0, 28.0, 60.0))
    world = World([SPEC, across], (128.0, 80.0))

    def solve(spec, point, near):
        return kin.inverse(spec, point, kin.free_headings(spec, point), near)

    bob = solve(across, (40.0, 40.0), across.home)  # Bob reaches over from the far side
    start = solve(SPEC, (16.0, 44.0), SPEC.home)
    goal = solve(SPEC, (56.0, 36.0), start)
    assert world.collisions({"Bob": bob, "Alice": start}) == []
    assert world.collisions({"Bob": bob, "Alice": goal}) == []  # both ends are free...
    crossing = world.path_collision({"Alice": kin.joint_path(start, goal, 10)}, others={"Bob": bob})
    assert "Alice's gripper-Bob's gripper" in crossing  # ...but the way between is not
