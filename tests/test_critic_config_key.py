"""ReAd's on-demand critic is keyed by the env's whole configuration and checked once trained."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from coopbench import envs
from coopbench import llm as llm_layer
from coopbench.critics import resolve
from coopbench.critics.resolve import (
    MIN_EXPERT_ACCEPTANCE,
    MIN_JOINT_RANK,
    CriticQualityError,
    cache_path,
    judge,
    quality_path,
    resolve_critic,
)
from coopbench.runner.single import EpisodeTask, run_task

ENV = "meetgrid/meet-v0"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_the_cache_key_holds_the_kwargs_the_env_was_made_with(meetgrid, cache):
    default, explicit, bigger = envs.make(ENV), envs.make(ENV, size=5), envs.make(ENV, size=7)
    assert bigger.spec.kwargs["size"] == 7 and default.spec.kwargs["size"] == 5
    assert cache_path(default) == cache_path(explicit)  # a default named is the same config
    assert cache_path(bigger) != cache_path(default)
    assert envs.registry.spec(ENV).kwargs.get("size", 5) == 5  # the registry keeps defaults


def test_changed_kwargs_train_a_second_critic_on_exactly_that_config(meetgrid, cache, capfd):
    small, big, again = envs.make(ENV), envs.make(ENV, size=7), envs.make(ENV)
    for env in (small, big, again):
        env.reset(seed=0)  # as the episode loop does before a planner asks for its critic
    first = resolve_critic(small, "auto", train_seconds=120)
    err = capfd.readouterr().err
    assert "no critic for meetgrid/meet-v0" in err and "budget" not in err
    resolve_critic(again, "auto", train_seconds=120)
    assert "no critic" not in capfd.readouterr().err  # the same config: the cached one
    second = resolve_critic(big, "auto", train_seconds=120)
    err = capfd.readouterr().err
    assert '"size": 7' in err
    assert cache_path(small).exists() and cache_path(big).exists()
    assert first.meta["dataset"]["config"]["env_kwargs"]["size"] == 5
    assert second.meta["dataset"]["config"]["env_kwargs"]["size"] == 7
    for env in (small, big):  # both clear the floors (issue 15: 26-41 % acceptance before)
        figures = json.loads(quality_path(cache_path(env)).read_text())
        assert figures["joint_rank"] >= MIN_JOINT_RANK, figures
        assert figures["expert_acceptance"] >= MIN_EXPERT_ACCEPTANCE, figures
        assert figures["ok"]
    assert "is poor" not in err

    task = EpisodeTask(ENV, "read-j-v0", "sim:expert?noise=0.3", 1, env_kwargs={"size": 7})
    result = run_task(task, llm=llm_layer.make("sim:expert?noise=0.3", cache=False))
    assert result.success  # the size-7 critic steers ReAd-J on the size-7 grid


def test_a_poor_critic_warns_in_one_line_and_strict_refuses_it(capsys):
    poor = {"joint_rank": 0.4, "expert_acceptance": 0.2, "states": 100, "ok": False}
    judge(poor, ENV, strict=False)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "critic for meetgrid/meet-v0 is poor" in err
    assert "40%" in err and "20%" in err
    with pytest.raises(CriticQualityError, match="is poor"):
        judge(poor, ENV, strict=True)
    judge({**poor, "joint_rank": 0.9, "expert_acceptance": 0.9, "ok": True}, ENV, strict=True)
    assert capsys.readouterr().err == ""


def test_on_demand_training_is_deterministic_and_keyed_by_its_recipe(
        meetgrid, tmp_path, monkeypatch, capfd):
    env = envs.make(ENV)
    env.reset(seed=0)
    weights = []
    for name in ("a", "b"):  # two fresh caches, the same configuration
        monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / name))
        resolve_critic(env, "train", train_seconds=120)
        saved = torch.load(cache_path(env), weights_only=True)
        weights.append([saved["state_dict"], *saved["members"]])
    assert len(weights[0]) == resolve.ON_DEMAND.ensemble
    for one, other in zip(*weights, strict=True):
        assert all(torch.equal(one[k], other[k]) for k in one)
    key = cache_path(env)
    monkeypatch.setattr(resolve, "ON_DEMAND", replace(resolve.ON_DEMAND, reset_episodes=41))
    assert cache_path(env) != key  # another recipe never reuses this one's critics
    capfd.readouterr()


def test_training_cut_by_its_budget_says_so(meetgrid, cache, capfd):
    env = envs.make(ENV)
    env.reset(seed=0)
    resolve_critic(env, "train", train_seconds=0.001)
    err = capfd.readouterr().err
    assert "stopped at its 0 s budget" in err and "another machine may train" in err
