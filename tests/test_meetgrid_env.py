"""The VocabularyEnv base, exercised through the example plug-in env."""

import numpy as np
import pytest

from coopbench import envs
from coopbench.core.types import ParseError
from coopbench.testing import check_env


@pytest.fixture
def env(meetgrid):
    return envs.make("meetgrid/meet-v0")


def test_check_env_contract_api_snapshots_and_determinism(meetgrid):
    """What a plug-in author runs: the contract, PettingZoo's parallel and AEC API tests,
    exact snapshot/restore and seeded determinism, over 50-step rollouts."""
    check_env("meetgrid/meet-v0", steps=50)


def test_parse_is_tolerant_but_strict_about_meaning(env):
    env.reset(seed=0)
    assert env.parse("Alice", "  Move EAST. ").text == "move east"
    assert env.parse("Alice", "south").text == "move south"
    with pytest.raises(ParseError, match="not possible now"):
        env.parse("Alice", "move north")  # the wall
    with pytest.raises(ParseError, match="not a valid action"):
        env.parse("Alice", "fly to the moon")
    with pytest.raises(ParseError, match="no agent named"):
        env.parse("Carol", "wait")


def test_action_mask_matches_action_options(env):
    _, infos = env.reset(seed=0)
    vocab = env.vocabulary("Alice")
    options = [vocab[i] for i in np.flatnonzero(infos["Alice"]["action_mask"])]
    assert options == env.action_options("Alice")


def test_snapshot_restore_rewinds_exactly(env):
    env.reset(seed=0)
    snap = env.snapshot()
    before = env.features().copy()
    env.step({"Alice": "move east", "Bob": "move west"})
    assert not np.array_equal(env.features(), before)
    env.restore(snap)
    assert np.array_equal(env.features(), before) and env.steps_taken == 0


def test_episode_truncates_at_the_step_cap(env):
    env.reset(seed=0)
    steps = 0
    while env.agents:
        _, _, terms, truncs, _ = env.step({a: env.wait_action(a) for a in env.agents})
        steps += 1
    assert steps == env.max_steps and truncs["Alice"] and not terms["Alice"]


@pytest.mark.parametrize("size", [2, 5, 6, 7])
def test_the_expert_meets_in_the_fewest_steps_from_every_pair_of_cells(meetgrid, size):
    """It used to swap rows forever when the agents were one row apart (size 6 from the
    start, or any detour leaving an odd row gap)."""
    env = envs.make("meetgrid/meet-v0", size=size, max_steps=4 * size)
    cells = [(r, c) for r in range(size) for c in range(size)]
    for alice in cells:
        for bob in cells:
            if alice == bob:
                continue
            env.reset(seed=0)
            env.pos = {"Alice": alice, "Bob": bob}
            steps = 0
            while env.agents:
                env.step(env.expert_joint())
                steps += 1
            gap = abs(alice[0] - bob[0]) + abs(alice[1] - bob[1])
            assert env.success() and steps == (gap + 1) // 2, (alice, bob, steps)
