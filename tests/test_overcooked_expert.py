"""The scripted greedy pair: the numbers the issue asks for, on every classic layout."""

from __future__ import annotations

import pytest

from coopbench import envs
from coopbench.envs.overcooked.layouts import CLASSIC_LAYOUTS


def _play(env) -> None:
    env.reset(seed=0)
    while env.agents:
        env.step(env.expert_joint())


def test_expert_delivers_at_least_five_soups_on_cramped_room_classic():
    env = envs.make("overcooked/cramped_room-v0")
    _play(env)
    assert env.ticks == 400
    assert env.soups_delivered >= 5
    assert env.score == 20 * env.soups_delivered
    assert env.success()


def test_expert_completes_read_cramped_room_within_its_cap():
    env = envs.make("overcooked/cramped_room-read-v0")
    assert env.max_steps == 20
    _play(env)
    assert env.success() and env.steps_taken <= 20


@pytest.mark.parametrize("name", sorted(CLASSIC_LAYOUTS))
@pytest.mark.parametrize("level", ["primitive", "skills"])
def test_expert_delivers_on_every_classic_layout(name, level):
    env = envs.make(f"overcooked/{name}{'' if level == 'primitive' else '-skills'}-v0")
    _play(env)
    assert env.soups_delivered >= 3, env.soups_delivered


@pytest.mark.parametrize("name", sorted(CLASSIC_LAYOUTS))
def test_expert_completes_every_read_setting(name):
    for suffix in ("-read", "-read-skills"):
        env = envs.make(f"overcooked/{name}{suffix}-v0")
        _play(env)
        assert env.success(), (name, suffix, env.steps_taken)
        assert env.steps_taken <= env.max_steps


def test_read_step_cap_and_tick_horizon_move_together_at_the_primitive_level():
    env = envs.make("overcooked/forced_coordination-read-v0", max_steps=60)
    assert env.max_steps == env.setting.horizon == 60
    env = envs.make("overcooked/forced_coordination-read-skills-v0")
    assert env.max_steps == 25 and env.setting.horizon == 400


def test_skill_steps_count_decisions_and_ticks():
    env = envs.make("overcooked/cramped_room-skills-v0")
    env.reset(seed=0)
    _, _, _, _, infos = env.step(env.expert_joint())
    assert env.steps_taken == 1
    assert infos["Alice"]["step"] == 1
    assert infos["Alice"]["ticks"] == env.ticks == env.state.timestep > 1
    assert infos["Alice"]["step_ticks"] == env.last_ticks == env.ticks
