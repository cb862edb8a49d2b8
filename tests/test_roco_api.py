"""roco envs: registration, PettingZoo conformance, determinism, snapshots and rendering."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from coopbench import envs
from coopbench.core.errors import CoopbenchError

ROCO_IDS = [i for i in envs.registry.ids() if i.startswith("roco/")]


def test_all_fourteen_levels_are_registered_with_caps():
    assert len(ROCO_IDS) == 14
    for env_id in ROCO_IDS:
        spec = envs.registry.spec(env_id)
        assert spec.kwargs["max_steps"] == 15 and spec.kwargs["jitter"] == 0.5  # seeds vary
        assert spec.caps.partial_obs == (spec.caps.task != "sweep")
        assert spec.caps.agents == (3 if spec.caps.task == "sort" else 2)


@pytest.mark.parametrize("env_id", ROCO_IDS)
def test_pettingzoo_parallel_and_aec_api(env_id):
    parallel_api_test(envs.make(env_id, jitter=1.0), num_cycles=6)
    api_test(parallel_to_aec(envs.make(env_id, jitter=1.0)), num_cycles=6)


def test_bad_level_and_kwargs_are_one_clear_error():
    from coopbench.envs.roco.sort import SortCubesEnv

    with pytest.raises(CoopbenchError, match="unknown sort level 'level9'"):
        SortCubesEnv("level9")
    with pytest.raises(CoopbenchError, match="jitter"):
        envs.make("roco/sort-level1-v0", jitter=-1.0)


def _episode(env_id: str, seed: int) -> list:
    """A whole episode of seeded random legal actions; every output of every step."""
    env = envs.make(env_id, jitter=1.0)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    trace = [{a: o.tolist() for a, o in obs.items()}, env.describe()]
    while env.agents:
        joint = {}
        for agent in env.agents:
            options = env.action_options(agent)
            joint[agent] = options[int(rng.integers(len(options)))]
        obs, rewards, terms, truncs, infos = env.step(joint)
        trace.append((
            {a: o.tolist() for a, o in obs.items()}, rewards, terms, truncs,
            [f.to_json() for f in env.last_feedback], env.describe(),
        ))
    return trace


@pytest.mark.parametrize(
    "env_id", ["roco/sweep-y2g2-v0", "roco/sandwich-recipe2-v0", "roco/sort-level3-v0"]
)
def test_whole_episodes_are_deterministic(env_id):
    first, second = _episode(env_id, 3), _episode(env_id, 3)
    assert first == second
    assert len(first) == 2 + 15  # random play never finishes these: all 15 steps compared
    assert _episode(env_id, 4)[0] != first[0]  # jitter follows the seed


def test_jitter_zero_is_the_fixed_scene_and_jitter_moves_objects():
    plain = [envs.make("roco/sort-level1-v0", jitter=0.0) for _ in range(2)]
    for i, env in enumerate(plain):
        env.reset(seed=i)
    assert np.array_equal(plain[0].features(), plain[1].features())
    jittered = envs.make("roco/sort-level1-v0", jitter=1.0)
    jittered.reset(seed=0)
    assert not np.array_equal(plain[0].features(), jittered.features())


def test_snapshot_restore_replays_exactly():
    env = envs.make("roco/sweep-y1g1-v0", jitter=1.0)
    env.reset(seed=5)
    env.step(env.expert_joint())
    snap = env.snapshot()
    joint = env.expert_joint()
    env.step(joint)
    after = (env.features().copy(), env.describe(), env.world.substeps)
    env.restore(snap)
    assert env.steps_taken == 1 and env.describe() != after[1]
    env.step(joint)
    assert np.array_equal(env.features(), after[0]) and env.describe() == after[1]
    assert env.world.substeps == after[2]


def test_render_is_an_rgb_array_that_shows_motion():
    env = envs.make("roco/sandwich-recipe1-v0", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    env.step(env.expert_joint())
    assert env.render().shape == first.shape and not np.array_equal(env.render(), first)


def test_features_have_a_fixed_size_per_task():
    sizes = {}
    for env_id in ROCO_IDS:
        env = envs.make(env_id)
        env.reset(seed=0)
        task = envs.registry.spec(env_id).caps.task
        sizes.setdefault(task, env.features().shape)
        assert env.features().shape == sizes[task]
        assert env.observation_space("Chad" if task != "sweep" else "Alice").contains(
            env.features()
        )
    assert sizes == {"sweep": (76,), "sandwich": (71,), "sort": (18,)}


def test_filming_the_motion_does_not_change_the_simulation():
    plain, filmed = (envs.make("roco/sort-level2-v0", jitter=1.0) for _ in range(2))
    plain.reset(seed=1)
    filmed.reset(seed=1)
    frames = filmed.film(every=10)
    for env in (plain, filmed):
        while env.agents:
            env.step(env.expert_joint())
    assert len(frames) > 2 * 3  # several frames per step while the arms move
    assert np.array_equal(plain.features(), filmed.features())
    assert plain.world.substeps == filmed.world.substeps
