"""overcooked: `start="seeded"` draws both players' starts from the reset seed (distinct
tiles, each on its own side), repeats per seed, and the expert still solves them."""

from __future__ import annotations

import pytest

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.episode import run_episode
from coopbench.planners.baseline import ExpertPlanner


def _players(env_id: str, seed: int, **kwargs) -> tuple:
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    return tuple((p.position, p.orientation) for p in env.state.players)


def test_overcooked_seeded_starts_differ_across_seeds_and_repeat_per_seed():
    starts = [_players("overcooked/cramped_room-read-v0", s, start="seeded") for s in range(8)]
    assert len(set(starts)) >= 6
    assert _players("overcooked/cramped_room-read-v0", 5, start="seeded") == starts[5]
    for (a, _), (b, _) in starts:
        assert a != b  # distinct tiles


def test_overcooked_default_start_is_the_layouts_fixed_one():
    fixed = {_players("overcooked/cramped_room-read-v0", s) for s in range(4)}
    assert len(fixed) == 1
    with pytest.raises(CoopbenchError, match="unknown start 'random'"):
        envs.make("overcooked/cramped_room-v0", start="random")


def test_overcooked_seeded_start_keeps_each_player_on_its_own_side():
    """Forced Coordination: the halves stay apart, so hand-overs are still needed."""
    from coopbench.envs.overcooked.start import region

    env = envs.make("overcooked/forced_coordination-read-skills-v0", start="seeded")
    homes = env.mdp.start_player_positions
    sides = [set(region(env.kitchen, h)) for h in homes]
    assert not sides[0] & sides[1]
    for seed in range(10):
        env.reset(seed=seed)
        for player, side in zip(env.state.players, sides, strict=True):
            assert player.position in side


@pytest.mark.parametrize("env_id", ["overcooked/cramped_room-read-v0",
                                    "overcooked/forced_coordination-read-skills-v0"])
def test_overcooked_expert_solves_seeded_starts(env_id):
    env = envs.make(env_id, start="seeded")
    for seed in range(4):
        assert run_episode(env, ExpertPlanner(), seed=seed).success, (env_id, seed)
