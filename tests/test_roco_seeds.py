"""roco: seeds vary the scene by default (jitter), a seed repeats its scene, jitter=0 is the
level's fixed scene (the expert on them: test_roco_expert.py)."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench import envs

ROCO_IDS = ["roco/sweep-y2g2-v0", "roco/sandwich-recipe2-v0", "roco/sort-level3-v0"]


def _scene(env_id: str, seed: int, **kwargs) -> tuple:
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    return env.features().tolist(), env.describe()


@pytest.mark.parametrize("env_id", ROCO_IDS)
def test_roco_seeds_give_different_scenes_and_a_seed_the_same_scene(env_id):
    scenes = [_scene(env_id, seed) for seed in range(4)]
    assert len({str(s) for s in scenes}) == 4  # every seed its own scene
    assert _scene(env_id, 2) == scenes[2]  # a fresh env, the same seed: the same scene


@pytest.mark.parametrize("env_id", ROCO_IDS)
def test_roco_jitter_zero_is_the_fixed_scene(env_id):
    assert _scene(env_id, 0, jitter=0.0) == _scene(env_id, 7, jitter=0.0)
    assert _scene(env_id, 0, jitter=0.0) != _scene(env_id, 0)


def test_roco_default_jitter_keeps_the_level_structure():
    """Same objects and targets; positions move by at most 2 * jitter cm."""
    env_id = "roco/sort-level5-v0"
    fixed, jittered = envs.make(env_id, jitter=0.0), envs.make(env_id)
    fixed.reset(seed=3)
    jittered.reset(seed=3)
    assert fixed.object_names() == jittered.object_names()
    for name in fixed.object_names():
        moved = np.hypot(*np.subtract(fixed.world.position(name), jittered.world.position(name)))
        assert 0 < moved <= 2 * jittered.jitter + 0.1
