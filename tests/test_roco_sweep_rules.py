"""roco sweep: the no-op MOVE is not an option, the final DUMP is rewarded, the critic sees
which cube each robot is at; the task itself (steps, success) is unchanged."""

import pickle

import numpy as np

from coopbench import envs
from coopbench.envs.roco.sweep import COMPLETE


def make(seed=0):
    env = envs.make("roco/sweep-y1g1-v0")
    env.reset(seed=seed)
    return env


def scene(env):
    """Poses and joints to 1e-9 (IK re-solved for the same point differs in the last bits)."""
    world = env.world
    return (
        {n: np.round([*b.position, b.angle], 9).tolist() for n, b in world.objects.items()},
        {a: np.round(arm.q, 9).tolist() for a, arm in world.arms.items()},
        pickle.dumps(env.state["at"]), list(env.state["bin"]),
    )


def test_move_to_the_cube_a_robot_is_at_is_no_option_but_still_the_same_step_as_wait():
    env = make()
    assert "MOVE yellow_cube_1" in env.action_options("Alice")
    env.step({"Alice": "MOVE yellow_cube_1", "Bob": "MOVE yellow_cube_1"})
    for agent in ("Alice", "Bob"):
        options = env.action_options(agent)
        assert "MOVE yellow_cube_1" not in options
        assert "MOVE green_cube_1" in options and "WAIT" in options
    snap = env.snapshot()
    env.step({"Alice": "MOVE yellow_cube_1", "Bob": "WAIT"})  # written out: parses and runs
    assert env.last_feedback == [] and env.last_team_reward == 0.0
    moved = scene(env)
    env.restore(snap)
    env.step({"Alice": "WAIT", "Bob": "WAIT"})
    assert scene(env) == moved  # ...as the no-op it is
    env.restore(snap)
    refused = env.verify({"Alice": env.parse("Alice", "MOVE yellow_cube_1"),
                          "Bob": env.parse("Bob", "SWEEP yellow_cube_1")})
    assert "Alice must WAIT at yellow_cube_1" in refused[0].message  # RoCo's rule still holds


def test_features_flag_the_cube_each_robot_is_at():
    env = make()
    assert env.features().shape == (76,)
    assert env.features_version == "sweep-2"
    env.state["at"] = {"Alice": "green_cube_1", "Bob": "yellow_cube_1"}  # as MOVEs leave it
    f = env.features()
    slot = {c: 8 * i for i, c in enumerate(env.cubes)}
    assert f[slot["green_cube_1"] + 6] == 1.0 and f[slot["green_cube_1"] + 7] == 0.0
    assert f[slot["yellow_cube_1"] + 6] == 0.0 and f[slot["yellow_cube_1"] + 7] == 1.0
    assert f[: 8 * len(env.cubes)].reshape(-1, 8)[:, 6:].sum() == 2.0


def test_the_dump_that_completes_the_task_is_rewarded_and_nothing_else_changes():
    env = make(seed=3)
    rewards, texts = [], []
    while env.agents:
        joint = env.expert_joint()
        texts.append(joint["Alice"].text)
        _, r, *_ = env.step(joint)
        rewards.append(r["Alice"])
    assert env.success() and env.completed() == {"yellow_cube_1", "green_cube_1"}
    assert texts[-1] == "DUMP" and len(rewards) == 5  # the expert's 5 steps, as before
    assert rewards == [0.0, 1.0, 0.0, 1.0, 1.0]  # two sweeps, then the completing DUMP
    assert COMPLETE in env.rewarded() and env.reward_version == "2"


def test_the_expert_only_takes_legal_options():
    env = make(seed=1)
    first = min(env.units(), key=lambda c: env.world.position(c)[0])
    env.step({"Alice": f"MOVE {first}"})  # Alice is there before Bob
    joint = env.expert_joint()
    assert joint["Alice"].text == "WAIT" and joint["Bob"].text == f"MOVE {first}"
    while env.agents:
        joint = env.expert_joint()
        for agent, action in joint.items():
            assert action.text in env.action_options(agent), (agent, action.text)
        env.step(joint)
    assert env.success() and env.steps_taken == 1 + 5  # her MOVE, then the expert's 5
