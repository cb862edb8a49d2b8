"""roco: the scripted expert solves every level, on the default jittered scenes and on the
fixed one, within the 15-step cap."""

import pytest

from coopbench import envs
from coopbench.episode import run_episode
from coopbench.planners.baseline import ExpertPlanner

ROCO_IDS = [i for i in envs.registry.ids() if i.startswith("roco/")]
# The expert's step counts without replanning: sweep 2 per target + 1 DUMP, sandwich pipelines
# PICK and PUT across the two sides, sort follows a breadth-first hand-off schedule.
EXPECTED_STEPS = {
    "roco/sweep-y1g1-v0": 5, "roco/sweep-y1g2-v0": 7, "roco/sweep-y2g2-v0": 9,
    "roco/sweep-y2g3-v0": 11, "roco/sweep-y3g3-v0": 13,
    "roco/sandwich-recipe1-v0": 4, "roco/sandwich-recipe2-v0": 6,
    "roco/sandwich-recipe3-v0": 8, "roco/sandwich-recipe4-v0": 12,
    "roco/sort-level1-v0": 1, "roco/sort-level2-v0": 2, "roco/sort-level3-v0": 4,
    "roco/sort-level4-v0": 5, "roco/sort-level5-v0": 6,
}


@pytest.mark.parametrize("env_id", ROCO_IDS)
@pytest.mark.parametrize(("kwargs", "seeds"), [({}, range(10)), ({"jitter": 0.0}, [0])],
                         ids=["default-jitter", "fixed-scene"])
def test_expert_solves_every_level(env_id, kwargs, seeds):
    env = envs.make(env_id, **kwargs)
    for seed in seeds:
        result = run_episode(env, ExpertPlanner(), seed=seed)
        assert result.success, (env_id, seed, env.last_feedback)
        assert result.interaction_steps == EXPECTED_STEPS[env_id], (env_id, seed)
        # +1 per unit, each counted once; sweep also +1 for the DUMP that completes the task
        assert result.return_ == len(env.units()) + env_id.startswith("roco/sweep"), env_id
