"""The wrapped env is the real game: exact parity with raw overcooked-ai, determinism, and the
process-global recipe trap."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench import envs
from coopbench.envs.overcooked import cache
from coopbench.envs.overcooked.layouts import CLASSIC_LAYOUTS
from coopbench.envs.overcooked.upstream import OCAction, RawOvercookedEnv, apply_recipes


@pytest.mark.parametrize("name", sorted(CLASSIC_LAYOUTS))
def test_parity_with_raw_overcooked_env(name):
    """Random joint primitive actions over a full 400-tick episode: same states, same rewards."""
    env = envs.make(f"overcooked/{name}-v0")
    env.reset(seed=0)
    raw = RawOvercookedEnv.from_mdp(env.mdp, horizon=400, info_level=0)
    raw._mp = cache.motion_planner(env.mdp, [])  # keep overcooked-ai out of site-packages
    rng = np.random.default_rng(sum(map(ord, name)))
    total, steps = 0.0, 0
    assert raw.state == env.state
    while env.agents:
        a, b = (int(x) for x in rng.integers(0, 6, size=2))
        apply_recipes(env.mdp.recipe_config)
        raw_state, raw_reward, raw_done, raw_info = raw.step(
            (OCAction.INDEX_TO_ACTION[a], OCAction.INDEX_TO_ACTION[b]))
        _, rewards, _, truncations, infos = env.step({"Alice": a, "Bob": b})
        steps += 1
        assert env.state == raw_state
        assert rewards["Alice"] == rewards["Bob"] == raw_reward
        assert [infos[x]["shaped_reward"] for x in ("Alice", "Bob")] == \
            list(raw_info["shaped_r_by_agent"])
        assert truncations["Alice"] == raw_done
        total += raw_reward
    assert steps == 400 and raw.is_done()
    assert env.score == total == raw.game_stats["cumulative_sparse_rewards_by_agent"].sum()


def test_parity_includes_soup_deliveries():
    """The expert's trajectory (which delivers soups) replays identically in the raw env."""
    env = envs.make("overcooked/cramped_room-v0")
    env.reset(seed=0)
    raw = RawOvercookedEnv.from_mdp(env.mdp, horizon=400, info_level=0)
    raw._mp = cache.motion_planner(env.mdp, [])
    raw_total = 0
    while env.agents:
        joint = env.expert_joint()
        apply_recipes(env.mdp.recipe_config)
        state, reward, _, _ = raw.step(tuple(OCAction.INDEX_TO_ACTION[joint[a].index]
                                             for a in ("Alice", "Bob")))
        env.step(joint)
        raw_total += reward
        assert env.state == state
    assert raw_total == env.score >= 100


def _rollout(env_id: str, steps: int, seed: int, **kwargs):
    env = envs.make(env_id, **kwargs)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [(obs, infos)]
    for _ in range(steps):
        if not env.agents:
            obs, infos = env.reset(seed=seed)
            out.append((obs, infos))
        joint = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        out.append(env.step(joint))
    return out


def _same(x, y) -> None:
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            _same(x[k], y[k])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for a, b in zip(x, y, strict=True):
            _same(a, b)
    elif isinstance(x, np.ndarray):
        np.testing.assert_array_equal(x, y)
    else:
        assert x == y


@pytest.mark.parametrize(("env_id", "steps"), [
    ("overcooked/coordination_ring-v0", 400),
    ("overcooked/forced_coordination-skills-v0", 60),
])
def test_multi_step_determinism(env_id, steps):
    """Same seed and actions: identical observations, rewards and infos at every step."""
    first = _rollout(env_id, steps, seed=3)
    second = _rollout(env_id, steps, seed=3)
    assert len(first) == len(second) == steps + 1 + sum(
        1 for r in first[1:] if isinstance(r, tuple) and len(r) == 2)
    _same(first, second)


def test_determinism_with_lossless_observations():
    _same(_rollout("overcooked/cramped_room-v0", 120, 5, obs_type="lossless"),
          _rollout("overcooked/cramped_room-v0", 120, 5, obs_type="lossless"))


def _cook_ticks(env) -> int:
    """Cooking ticks until the soup is ready (the tick that starts cooking counts as one)."""
    while True:
        soup = env.state.objects.get(env.kitchen.pots[0])
        if soup is not None and soup.is_cooking:
            break
        env.step(env.expert_joint())
    ticks = 1
    while not env.state.objects[env.kitchen.pots[0]].is_ready:
        env.step({"Alice": "stay", "Bob": "stay"})
        ticks += 1
    return ticks


def test_recipe_settings_do_not_leak_between_envs_in_one_process():
    """ReAd (cook 2) and classic (cook 20) envs built and stepped in one process keep their own
    recipe settings, whichever was built last."""
    read = envs.make("overcooked/cramped_room-read-v0", horizon=200, max_steps=200)
    classic = envs.make("overcooked/cramped_room-v0")  # reconfigures Recipe globally
    read.reset(seed=0)
    classic.reset(seed=0)
    assert _cook_ticks(read) == 2
    assert _cook_ticks(classic) == 20
    read.reset(seed=0)
    assert _cook_ticks(read) == 2
    # and the ReAd soup is worth 20 points when delivered
    while read.agents and not read.success():
        read.step(read.expert_joint())
    assert read.score == 20 and read.soups_delivered == 1
