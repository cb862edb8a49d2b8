"""roco: parsing in RoCo's words, verification stage by stage, execution and exact rewinds."""

import math
import pickle

import numpy as np
import pytest

from coopbench import envs
from coopbench.core.types import ParseError


def make(env_id, seed=0, **kwargs):
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    return env


def plan(env, **texts):
    return {agent: env.parse(agent, text) for agent, text in texts.items()}


def scene(env):
    """Everything physical: object poses, arm joints, held objects, task state."""
    world = env.world
    return (
        {n: (tuple(b.position), b.angle, world.is_lifted(n)) for n, b in world.objects.items()},
        {a: arm.q for a, arm in world.arms.items()},
        {a: world.held(a) for a in world.arms},
        pickle.dumps(env.state),
    )


# -- parsing ---------------------------------------------------------------------------------


def test_parse_accepts_roco_text_with_loose_spacing_and_case():
    env = make("roco/sort-level2-v0")
    want = "PICK blue_square PLACE panel5"
    for text in (
        "PICK blue_square PLACE panel5",
        "pick Blue Square place panel 5",
        "NAME Alice ACTION PICK  blue_square  PLACE panel5.",
        "  Pick blue-square, Place PANEL5",
    ):
        assert env.parse("Alice", text).text == want
    assert env.parse("Bob", "wait").text == "WAIT"


SORT, SWEEP, SANDWICH = "roco/sort-level1-v0", "roco/sweep-y1g1-v0", "roco/sandwich-recipe1-v0"


@pytest.mark.parametrize(
    "env_id,agent,text,reason",
    [
        (SORT, "Alice", "PICK blue_square", "must contain both PICK and PLACE"),
        (SORT, "Alice", "PICK green_blob PLACE panel2", "unknown object 'green_blob'"),
        (SORT, "Alice", "PICK blue_square PLACE shelf", "unknown place 'shelf'"),
        (SORT, "Zed", "WAIT", "no robot named 'Zed'"),
        (SWEEP, "Alice", "SWEEP yellow_cube_1", "Alice holds the dustpan and cannot SWEEP"),
        (SWEEP, "Bob", "DUMP", "Bob holds the broom and cannot DUMP"),
        (SWEEP, "Alice", "MOVE trash_bin", "MOVE target must be a cube"),
        (SWEEP, "Bob", "MOVE green_cube_7", "unknown object 'green_cube_7'"),
        (SWEEP, "Bob", "JUMP", "unknown action 'JUMP'"),
        (SANDWICH, "Dave", "PUT ham bread_slice1", "cannot PUT ham: Dave is not holding it"),
        (SANDWICH, "Dave", "PICK spaghetti", "unknown object 'spaghetti'"),
    ],
)
def test_parse_errors_give_roco_reasons(env_id, agent, text, reason):
    env = make(env_id)
    with pytest.raises(ParseError, match=reason.replace("(", r"\(")) as caught:
        env.parse(agent, text)
    assert caught.value.as_feedback().kind == "parse"


# -- verification, one stage at a time ------------------------------------------------------


def test_task_constraint_is_checked_first_and_named():
    env = make("roco/sort-level2-v0")
    # panel4 is pink's target (a rule violation) and also out of Alice's reach: the rule wins.
    feedback = env.verify(plan(env, Alice="PICK blue_square PLACE panel4"))
    assert [f.kind for f in feedback] == ["constraint"]
    assert feedback[0].agent == "Alice"
    assert "blue_square can only be placed on panel2, panel3 or panel5" in feedback[0].message
    everyone_waits = env.verify({a: env.wait_action(a) for a in env.possible_agents})
    assert "can't all WAIT" in everyone_waits[0].message


def test_out_of_reach_target_fails_reachability():
    env = make("roco/sort-level2-v0")  # blue_square on panel3; panel5 is free
    feedback = env.verify(plan(env, Alice="PICK blue_square PLACE panel5"))
    assert [(f.agent, f.kind) for f in feedback] == [("Alice", "reach")]
    assert "Reachability failed: out of reach: Alice (80.0, 44.0)" in feedback[0].message
    assert "panel5" in feedback[0].message
    sandwich = make("roco/sandwich-recipe1-v0")  # bread is on Dave's side
    feedback = sandwich.verify(plan(sandwich, Chad="PICK bread_slice1"))
    assert [(f.agent, f.kind) for f in feedback] == [("Chad", "reach")]


def test_pose_inside_the_reach_box_but_beyond_the_joints_fails_ik():
    env = make("roco/sort-level2-v0")
    env.world.teleport("blue_square", (8.0, 59.0))  # in Alice's box, 67 cm from her base
    feedback = env.verify(plan(env, Alice="PICK blue_square PLACE panel2"))
    assert [(f.agent, f.kind) for f in feedback] == [("Alice", "ik")]
    assert "IK failed on Alice" in feedback[0].message and "blue_square" in feedback[0].message


def test_two_arms_at_one_panel_collide_at_the_goal_configuration():
    env = make("roco/sort-level3-v0")  # blue on panel4, pink on panel2, panel3 free
    joint = plan(env, Alice="PICK pink_polygon PLACE panel3", Bob="PICK blue_square PLACE panel3")
    feedback = env.verify(joint)
    assert [f.kind for f in feedback] == ["collision"]
    assert "Alice's gripper-Bob's gripper" in feedback[0].message
    assert "panel3" in feedback[0].message
    before = scene(env)
    env.step(joint)  # a refused plan consumes the step but changes nothing
    assert env.last_feedback == feedback and scene(env) == before and env.steps_taken == 1


def test_dustpan_lowered_onto_another_cube_is_a_collision():
    env = make("roco/sweep-y1g1-v0")
    x, y = env.world.position("yellow_cube_1")
    env.world.teleport("red_cube_1", (x + 6.0, y - 9.0))  # where the dustpan's wall will land
    feedback = env.verify(plan(env, Alice="MOVE yellow_cube_1", Bob="MOVE yellow_cube_1"))
    assert [f.kind for f in feedback] == ["collision"]
    assert "Alice's dustpan-red_cube_1" in feedback[0].message


def test_sweep_and_sandwich_rules():
    sweep = make("roco/sweep-y1g1-v0")
    feedback = sweep.verify(plan(sweep, Alice="MOVE yellow_cube_1", Bob="SWEEP yellow_cube_1"))
    messages = " ".join(f.message for f in feedback)
    assert "needs both robots at yellow_cube_1" in messages
    assert "Alice must WAIT at yellow_cube_1 while Bob SWEEPs" in messages
    assert "dustpan is empty" in sweep.verify(plan(sweep, Alice="DUMP"))[0].message
    sandwich = make("roco/sandwich-recipe1-v0")
    sandwich.step(plan(sandwich, Chad="PICK ham", Dave="PICK bread_slice1"))
    assert not sandwich.last_feedback
    both_put = plan(sandwich, Chad="PUT ham cutting_board", Dave="PUT bread_slice1 cutting_board")
    assert "Only one robot can PUT at a time" in sandwich.verify(both_put)[0].message
    wrong_order = sandwich.verify(plan(sandwich, Chad="PUT ham cutting_board"))
    assert "recipe says bread_slice1 must go on the cutting_board first" in wrong_order[0].message


# -- execution ------------------------------------------------------------------------------


def test_feasible_sort_plan_moves_the_cube_onto_its_panel():
    env = make("roco/sort-level1-v0", jitter=1.0)
    joint = plan(env, Alice="PICK blue_square PLACE panel2")
    assert env.verify(joint) == []
    _, rewards, *_ = env.step(joint)
    assert env.last_feedback == [] and rewards["Alice"] == 1.0
    assert math.dist(env.world.position("blue_square"), (32.0, 44.0)) < 1.0
    assert env.arm("Alice").q == env.arm("Alice").spec.home  # back home after the action
    assert "blue_square is on panel2" in env.describe()


def test_feasible_sweep_and_dump_put_the_cube_in_the_bin():
    env = make("roco/sweep-y1g1-v0", jitter=1.0)
    env.step(plan(env, Alice="MOVE green_cube_1", Bob="MOVE green_cube_1"))
    _, rewards, *_ = env.step(plan(env, Bob="SWEEP green_cube_1"))
    # ReAd's Sweep reward: +1 when a target cube is swept into the dustpan, not when dumped
    assert env.where("green_cube_1") == "dustpan" and rewards["Bob"] == 1.0
    assert "green_cube_1" in env.world.touched_by_broom()  # pushed by contact
    assert "green_cube_1" not in env.completed()  # success still needs it in the bin
    _, rewards, *_ = env.step(plan(env, Alice="DUMP"))
    assert env.where("green_cube_1") == "trash_bin" and rewards["Alice"] == 0.0
    assert "green_cube_1" in env.completed()
    assert math.dist(env.world.position("green_cube_1"), (11.0, 13.0)) < 20.0


def test_feasible_sandwich_plan_stacks_in_order():
    env = make("roco/sandwich-recipe1-v0", jitter=1.0)
    env.step(plan(env, Chad="PICK ham", Dave="PICK bread_slice1"))
    _, rewards, *_ = env.step(plan(env, Dave="PUT bread_slice1 cutting_board"))
    assert rewards["Dave"] == 1.0 and env.state["stack"] == ["bread_slice1"]
    _, rewards, *_ = env.step(plan(env, Chad="PUT ham bread_slice1", Dave="PICK bread_slice2"))
    assert rewards["Chad"] == 1.0 and "ham: atop bread_slice1" in env.describe()


def test_sweep_that_misses_rewinds_exactly():
    env = make("roco/sweep-y1g1-v0", jitter=1.0)
    env.step(plan(env, Alice="MOVE yellow_cube_1", Bob="MOVE yellow_cube_1"))
    x, y = env.world.position("yellow_cube_1")
    env.world.teleport("yellow_cube_1", (x + 13.0, y))  # knocked aside after the robots arrived
    joint = plan(env, Bob="SWEEP yellow_cube_1")
    assert env.verify(joint) == []  # nothing in the goal pose is wrong...
    before, features = scene(env), env.features().copy()
    _, rewards, *_ = env.step(joint)  # ...but the broom passes beside the cube
    assert [(f.agent, f.kind) for f in env.last_feedback] == [("Bob", "execution")]
    assert "SWEEP missed yellow_cube_1: the broom never touched it" in env.last_feedback[0].message
    assert scene(env) == before and np.array_equal(env.features(), features)
    assert rewards["Bob"] == 0.0 and env.steps_taken == 2


def test_object_too_heavy_for_the_grip_slips_and_rewinds_exactly():
    env = make("roco/sort-level1-v0")
    body = env.world.objects["blue_square"]
    body.mass, body.moment = 1.0e5, 1.0e7  # far beyond what the gripper can hold
    joint = plan(env, Alice="PICK blue_square PLACE panel2")
    assert env.verify(joint) == []
    before = scene(env)
    env.step(joint)
    assert [(f.agent, f.kind) for f in env.last_feedback] == [("Alice", "execution")]
    assert "blue_square slipped out of Alice's gripper" in env.last_feedback[0].message
    assert scene(env) == before


def test_legal_options_follow_the_rules():
    env = make("roco/sweep-y1g1-v0")
    assert "DUMP" not in env.action_options("Alice")  # empty dustpan
    assert not any(o.startswith("SWEEP") for o in env.action_options("Bob"))
    env.step(plan(env, Alice="MOVE green_cube_1", Bob="MOVE green_cube_1"))
    assert env.action_options("Bob")[-2:] == ["SWEEP green_cube_1", "WAIT"]
    sort = make("roco/sort-level5-v0")
    assert sort.action_options("Bob") == [
        "PICK pink_polygon PLACE panel4", "PICK pink_polygon PLACE panel5", "WAIT"
    ]
