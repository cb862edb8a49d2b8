"""PettingZoo conformance for every registered Overcooked id and both action levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from coopbench import envs

OVERCOOKED_IDS = [i for i in envs.registry.ids() if i.startswith("overcooked/")]


def test_every_setting_and_level_is_registered():
    assert len(OVERCOOKED_IDS) == 21  # 5 classic layouts x 4 variants + the generic id
    for name in ("cramped_room", "asymmetric_advantages", "coordination_ring",
                 "forced_coordination", "counter_circuit"):
        for suffix in ("", "-skills", "-read", "-read-skills"):
            assert f"overcooked/{name}{suffix}-v0" in OVERCOOKED_IDS


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PettingZoo warns about optional API it probes
        fn(*args, **kwargs)


@pytest.mark.parametrize("env_id", OVERCOOKED_IDS)
def test_pettingzoo_api(env_id):
    _quiet(parallel_api_test, envs.make(env_id), num_cycles=15)
    _quiet(api_test, parallel_to_aec(envs.make(env_id)), num_cycles=8)


@pytest.mark.parametrize("level", ["primitive", "skills"])
def test_api_other_layout_and_observation_types(level):
    env = envs.make("overcooked/layout-v0", layout="tutorial_0", action_level=level)
    _quiet(parallel_api_test, env, num_cycles=10)
    for obs_type in ("lossless", "featurized"):
        env = envs.make("overcooked/cramped_room-v0", obs_type=obs_type, action_level=level)
        _quiet(api_test, parallel_to_aec(env), num_cycles=5)


@pytest.mark.parametrize("obs_type", ["compact", "compact_soup", "lossless", "featurized"])
def test_observations_lie_in_their_spaces(obs_type):
    env = envs.make("overcooked/forced_coordination-v0", obs_type=obs_type)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(30):
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), (agent, o)
        obs, *_ = env.step({a: int(rng.integers(6)) for a in env.agents})
    assert env.observation_space("Alice") is env.observation_space("Alice")


def test_features_are_fixed_size_documented_and_bounded():
    from coopbench.envs.overcooked.features import FEATURE_NAMES

    for env_id in ("overcooked/cramped_room-v0", "overcooked/counter_circuit-read-v0"):
        env = envs.make(env_id)
        env.reset(seed=0)
        while env.agents:
            vec = env.features()
            assert vec.shape == (len(FEATURE_NAMES),) == (39,) and vec.dtype == np.float32
            assert vec.min() >= 0.0 and vec.max() <= 1.0
            env.step(env.expert_joint())
        assert env.features_version == "1"


def test_compact_observation_is_egocentric():
    env = envs.make("overcooked/cramped_room-v0")
    obs, _ = env.reset(seed=0)
    alice, bob = obs["Alice"], obs["Bob"]
    np.testing.assert_array_equal(alice[:11], bob[11:22])
    np.testing.assert_array_equal(alice[11:22], bob[:11])
    np.testing.assert_array_equal(env.features(), alice)
    from coopbench.envs.overcooked.features import compact

    for _ in range(5):
        obs, *_ = env.step({"Alice": "interact", "Bob": "east"})
    np.testing.assert_array_equal(compact(env.kitchen, env.state, 0, env.ticks / 400, 1),
                                  obs["Bob"])


def test_compact_soup_says_which_soup_each_agent_holds():
    """The expert's first delivery: the holder's soup shows 3 onions in its `self` slots and in
    its partner's `partner` slots; the rest equals `compact`."""
    env = envs.make("overcooked/cramped_room-v0", obs_type="compact_soup")
    plain = envs.make("overcooked/cramped_room-v0")
    obs, _ = env.reset(seed=0)
    plain.reset(seed=0)
    assert obs["Alice"].shape == (43,)
    seen = False
    for _ in range(60):
        joint = env.expert_joint()
        obs, *_ = env.step(joint)
        ref, *_ = plain.step(joint)
        for agent in env.possible_agents:
            np.testing.assert_array_equal(obs[agent][:39], ref[agent])
        holders = [i for i, p in enumerate(env.state.players)
                   if p.held_object is not None and p.held_object.name == "soup"]
        for i, agent in enumerate(env.possible_agents):
            me, partner = obs[agent][39:41], obs[agent][41:43]
            np.testing.assert_array_equal(me, [1.0, 0.0] if i in holders else [0.0, 0.0])
            np.testing.assert_array_equal(partner,
                                          [1.0, 0.0] if 1 - i in holders else [0.0, 0.0])
        seen = seen or bool(holders)
    assert seen
