"""The VocabularyEnv base, exercised through the example plug-in env."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from coopbench import envs
from coopbench.core.types import ParseError


@pytest.fixture
def env(meetgrid):
    return envs.make("meetgrid/meet-v0")


def test_pettingzoo_parallel_and_aec_api(env):
    parallel_api_test(env, num_cycles=50)
    api_test(parallel_to_aec(envs.make("meetgrid/meet-v0")), num_cycles=50)


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
