"""Critics are resolved by the runner, once per env configuration, and handed to planners."""

import json

import numpy as np
import pytest
import yaml

from coopbench import envs, planners
from coopbench import llm as llm_layer
from coopbench.core.errors import ConfigError
from coopbench.core.types import CriticRequest
from coopbench.critics import resolve
from coopbench.runner import critic_resolution as runner_critics
from coopbench.runner.matrix import run_matrix
from coopbench.runner.single import EpisodeTask
from coopbench.runner.spec import parse_spec
from coopbench.runner.store import RunStore

ENV = "meetgrid/meet-v0"
SIM = "sim:expert?noise=0.3&seed=0"


def test_a_read_planner_without_a_critic_is_one_line_naming_the_fix(meetgrid):
    env = envs.make(ENV)
    env.reset(seed=0)
    planner = planners.make("read-j-v0")
    assert planner.critic_request() == CriticRequest()  # "auto" on the CPU, 120 s, not strict
    with pytest.raises(ConfigError, match="needs an advantage critic.*critic_request") as info:
        planner.reset(env, llm_layer.make(SIM, cache=False), np.random.default_rng(0))
    assert "\n" not in str(info.value)


def test_planners_without_a_critic_request_none():
    assert planners.make("central-v0").critic_request() is None
    assert planners.make("llm-score-v0").critic_request() is None  # scores, no critic term
    assert planners.make("critic-greedy-v0").critic_request() is not None


def test_one_resolution_per_env_configuration_and_each_task_gets_its_checkpoint(
        meetgrid, critic_path, monkeypatch):
    seen = []
    real = resolve.locate

    def counting(env, request):
        seen.append((dict(env.spec.kwargs), request))
        return real(env, request)

    monkeypatch.setattr(resolve, "locate", counting)
    kw = {"critic": str(critic_path)}
    tasks = [EpisodeTask(ENV, "read/read-j-v0", SIM, s, planner_kwargs=kw) for s in range(3)]
    tasks += [EpisodeTask(ENV, "read/read-s-v0", SIM, 0, planner_kwargs=kw)]
    tasks += [EpisodeTask(ENV, "llm/central-v0", SIM, 0)]
    records = runner_critics.prepare_critics(tasks, in_process=True, strict=True)
    assert len(seen) == 1 and seen[0][1].strict  # one config, one request: resolved once
    assert [t.critic_checkpoint for t in tasks] == [str(critic_path)] * 4 + [None]
    (record,) = records
    assert record["planners"] == ["read/read-j-v0", "read/read-s-v0"]
    assert record["origin"] == "path" and record["checkpoint"] == str(critic_path)
    assert record["request"]["strict"] is True


def test_the_matrix_manifest_records_the_critic_it_used(meetgrid, critic_path, tmp_path):
    spec = parse_spec(yaml.safe_load(f"""
name: critics
envs: [{ENV}]
planners:
  - id: read/read-j-v0
    kwargs: {{critic: "{critic_path}"}}
  - llm/central-v0
llms: ["{SIM}"]
seeds: 0-1
"""))
    run_matrix(spec, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    (record,) = manifest["critics"]
    assert record["env"] == ENV and record["planners"] == ["read/read-j-v0"]
    assert record["checkpoint"] == str(critic_path) and record["origin"] == "path"
    episodes, _ = RunStore(tmp_path / "run").read_episodes()
    assert len(episodes) == 4 and all(e.error is None for e in episodes)


def test_a_poor_on_demand_critic_stops_a_strict_matrix_in_one_line(meetgrid, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(resolve, "train_on_demand", _tiny_training)
    monkeypatch.setattr(resolve, "quality",
                        lambda critic, env: {"joint_rank": 0.1, "expert_acceptance": 0.0,
                                             "states": 5, "ok": False})
    spec = parse_spec(yaml.safe_load(f"""
name: strict
envs: [{ENV}]
planners: [read/read-j-v0]
llms: ["{SIM}"]
seeds: 0
"""))
    with pytest.raises(resolve.CriticQualityError, match="critic for meetgrid/meet-v0 is poor"):
        run_matrix(spec, tmp_path / "run", strict_critic=True)
    # refused before any episode started: a failed start leaves nothing behind (issue 25)
    assert not (tmp_path / "run").exists()


def _tiny_training(env, out, seconds):
    from coopbench.critics.dataset import CollectConfig, collect
    from coopbench.critics.train import TrainConfig, train

    data = collect(CollectConfig(env.spec.id, expert_episodes=2, reset_episodes=2))
    critic, _ = train(data, TrainConfig(epochs=2, max_seconds=5), out)
    return critic


POOR = {"joint_rank": 0.1, "expert_acceptance": 0.0, "states": 5, "ok": False}


def test_strict_measures_a_checkpoint_without_figures_and_refuses_a_poor_one(
        meetgrid, critic_path, monkeypatch):
    monkeypatch.setattr(resolve, "quality", lambda critic, env: POOR)
    env = envs.make(ENV)
    env.reset(seed=0)
    found = resolve.locate(env, CriticRequest(str(critic_path)))  # not strict: not measured
    assert found.origin == "path" and found.quality is None
    with pytest.raises(resolve.CriticQualityError, match="is poor"):
        resolve.locate(env, CriticRequest(str(critic_path), strict=True))


def test_a_poor_cached_critic_warns_each_time_it_is_used(meetgrid, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(resolve, "train_on_demand", _tiny_training)
    monkeypatch.setattr(resolve, "quality", lambda critic, env: POOR)
    env = envs.make(ENV)
    env.reset(seed=0)
    assert resolve.locate(env, CriticRequest()).origin == "trained"
    assert "warning: critic for meetgrid/meet-v0 is poor" in capsys.readouterr().err
    again = resolve.locate(env, CriticRequest())
    assert again.origin == "cached" and again.quality == POOR
    assert "warning: critic for meetgrid/meet-v0 is poor" in capsys.readouterr().err
    with pytest.raises(resolve.CriticQualityError):  # refused, although it stays cached
        resolve.locate(env, CriticRequest(strict=True))


def test_every_shipped_critic_carries_its_quality_figures():
    shipped = sorted(resolve.PRETRAINED.glob("*.pt"))
    assert shipped
    for pt in shipped:
        figures = json.loads(resolve.quality_path(pt).read_text())
        assert figures["states"] == resolve.QUALITY_STATES, pt.name
        assert figures["ok"] == (figures["joint_rank"] >= resolve.MIN_JOINT_RANK
                                 and figures["expert_acceptance"]
                                 >= resolve.MIN_EXPERT_ACCEPTANCE), pt.name


def test_a_shipped_critic_is_recorded_with_its_figures(capsys):
    env = envs.make("roco/sort-level5-v0")
    env.reset(seed=0)
    found = resolve.locate(env, CriticRequest())
    assert found.origin == "shipped" and found.quality["ok"] is True
    assert "is poor" not in capsys.readouterr().err
