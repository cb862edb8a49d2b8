"""Credit assignment on the real Overcooked env: the progress measure and a training smoke run."""

from __future__ import annotations

import pytest
import torch

from coopbench import envs
from coopbench.credit.ppo import TrainConfig, Trainer
from coopbench.credit.progress import measure_for
from coopbench.credit.progress_overcooked import (
    USELESS_ITEM,
    overcooked_progress,
    team_progress,
)
from coopbench.credit.vecenv import VecEnv
from coopbench.envs.overcooked.kitchen import held

torch.set_num_threads(1)
ENV = "overcooked/cramped_room-v0"


def test_progress_rises_along_the_experts_first_delivery():
    env = envs.make(ENV)
    env.reset(seed=0)
    assert measure_for(env, ENV) is overcooked_progress
    start = [overcooked_progress(env, a) for a in env.possible_agents]
    seen = [team_progress(env)]
    while env.soups_delivered == 0:
        env.step(env.expert_joint())
        seen.append(team_progress(env))
    assert env.steps_taken < 80
    assert seen[-1] - seen[0] >= 7.0  # (n + 4) per delivered 3-onion soup
    assert max(seen[:-1]) < seen[-1]
    for agent, before in zip(env.possible_agents, start, strict=True):
        assert overcooked_progress(env, agent) > before


def test_a_soup_off_the_recipe_is_worth_nothing():
    env = envs.make(ENV)
    env.reset(seed=0)
    pot = env.kitchen.pots[0]
    # Walk the expert until one onion is in the pot, then start cooking it at once.
    for _ in range(60):
        soup = env.state.objects.get(pot)
        if soup is not None and len(soup._ingredients) == 1:
            break
        env.step(env.expert_joint())
    one_onion = team_progress(env)
    soup = env.state.objects[pot]
    soup.begin_cooking()  # what an agent's interact with empty hands does
    assert soup.is_cooking
    held_values = sum(0.5 for p in env.state.players if held(p) in ("onion", "dish"))
    assert team_progress(env) <= held_values + 1e-9 < one_onion + 1e-9


def test_onions_for_the_last_free_place_count_once_and_a_useless_one_costs():
    from overcooked_ai_py.mdp.overcooked_mdp import ObjectState

    env = envs.make(ENV)
    env.reset(seed=0)
    pot = env.kitchen.pots[0]
    for _ in range(80):  # the expert until the pot holds two onions
        soup = env.state.objects.get(pot)
        if soup is not None and len(soup._ingredients) == 2:
            break
        env.step(env.expert_joint())
    for player in env.state.players:
        player.held_object = None
    two_in_pot = team_progress(env)
    players = env.state.players
    players[0].held_object = ObjectState("onion", players[0].position)
    one_held = team_progress(env)
    players[1].held_object = ObjectState("onion", players[1].position)
    assert one_held == pytest.approx(two_in_pot + 0.5)
    # The second onion has no place; it must be put down before Bob can start the soup.
    assert USELESS_ITEM < 0
    assert team_progress(env) == pytest.approx(one_held + USELESS_ITEM)


def test_a_dish_counts_only_once_a_recipe_soup_cooks():
    from overcooked_ai_py.mdp.overcooked_mdp import ObjectState

    env = envs.make(ENV)
    env.reset(seed=0)
    alice = env.state.players[0]
    empty_kitchen = team_progress(env)
    alice.held_object = ObjectState("dish", alice.position)
    assert team_progress(env) == pytest.approx(empty_kitchen)  # nothing to serve yet


def test_vecenv_reports_soups_and_hand_shaping():
    vec = VecEnv(ENV, 2, seed=0, horizon=20)
    vec.reset()
    finished = []
    for _ in range(20):
        out = vec.step(vec.envs[0].np_random.integers(6, size=(2, 2)))
        finished += out.finished
        assert out.extra_reward.shape == (2, 2)
    assert len(finished) == 2 and all("soups" in f for f in finished)
    assert vec.obs_dim == 39 and vec.max_actions == 6


@pytest.mark.parametrize("reward", ["hand", "sparse"])
def test_ppo_runs_on_overcooked(tmp_path, reward):
    config = TrainConfig(ENV, reward=reward, total_steps=2 * 4 * 25, num_envs=4, num_steps=25,
                         env_kwargs={"horizon": 25}, tensorboard=False)
    Trainer(config, tmp_path, log=lambda m: None).train()
    rows = (tmp_path / "curves.jsonl").read_text().splitlines()
    assert len(rows) == 2 and '"soups"' in rows[0]
