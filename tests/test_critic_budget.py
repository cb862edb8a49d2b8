"""Critic data the ReAd way (planner rollouts with ε-exploration, Monte-Carlo targets) and the
matrix's critic data budget axis: one critic per (env, source, budget), cached, recorded in
the manifest, and one report plot of success against transitions."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from coopbench import envs
from coopbench.core.errors import ConfigError, CoopbenchError
from coopbench.critics import resolve
from coopbench.critics import train as train_module
from coopbench.critics.budget import DataBudget, DataSource, collect_stream
from coopbench.critics.dataset import CollectConfig, Dataset, collect, discounted_returns
from coopbench.reporting.budget_plot import FILE, budget_figure
from coopbench.reporting.plots import write_plots
from coopbench.reporting.summary import load_runs, summarise
from coopbench.reporting.tables import format_csv
from coopbench.runner.cells import expand
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec
from coopbench.runner.store import RunStore

ENV = "meetgrid/meet-v0"
SIM = "sim:expert?noise=0.3"
GAMMA = 0.95


def planner_data(**extra) -> Dataset:
    cfg = dict(expert_episodes=0, reset_episodes=0, llm_episodes=3, llm=SIM,
               llm_planner="central-v0", epsilon=0.3, gamma=GAMMA, seed=0)
    return collect(CollectConfig(ENV, **{**cfg, **extra}))


def test_discounted_returns_by_hand():
    assert discounted_returns([0.0, 0.0, 1.0], 0.5) == [0.25, 0.5, 1.0]
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == [1.5, 1.0, 2.0]


def test_planner_rollouts_with_epsilon_have_monte_carlo_targets_and_provenance(meetgrid):
    data = planner_data()
    (source,) = data.meta["sources"]
    assert source["source"] == "llm" and source["planner"] == "llm/central-v0"
    assert source["llm"] == SIM and source["epsilon"] == 0.3
    assert source["episodes"] == 3 and source["transitions"] == len(data)
    assert source["label"] == f"planner:llm/central-v0@{SIM}"
    assert 0 < source["explored_steps"] < len(data)  # some steps random, not all
    assert source["llm_usage"]["calls"] >= len(data) - source["explored_steps"]
    assert not np.isnan(data.rewards).any()  # no counterfactual rows in planner data
    for episode in np.unique(data.episode):  # each episode's targets, from its own rewards
        rows = data.episode == episode
        expected = discounted_returns(data.rewards[rows].tolist(), GAMMA)
        np.testing.assert_allclose(data.returns[rows], expected, rtol=1e-6)
    # meetgrid rewards 1 on meeting (the end) and 0 before: G_0 = γ^(T-1) when it met
    met = [e for e in np.unique(data.episode) if data.rewards[data.episode == e][-1] == 1.0]
    assert met
    rows = data.rewards[data.episode == met[0]]
    assert rows[:-1].sum() == 0
    assert data.returns[data.episode == met[0]][0] == pytest.approx(GAMMA ** (len(rows) - 1))


def test_epsilon_one_never_asks_the_planner(meetgrid):
    data = planner_data(epsilon=1.0, llm_episodes=1)
    (source,) = data.meta["sources"]
    assert source["explored_steps"] == len(data) and source["llm_usage"]["calls"] == 0


def test_a_budgets_model_usage_is_its_own_as_if_collected_alone(meetgrid):
    stream = planner_data(llm_episodes=8, max_transitions=60)
    small = stream.head(15)
    alone = planner_data(llm_episodes=8, max_transitions=15)
    (whole,), (cut,), (own,) = (d.meta["sources"] for d in (stream, small, alone))
    assert cut["episodes"] < whole["episodes"]
    assert 0 < cut["llm_usage"]["calls"] < whole["llm_usage"]["calls"]
    assert (cut["llm_usage"], cut["explored_steps"]) == (own["llm_usage"], own["explored_steps"])
    assert small.meta["llm_usage"] == cut["llm_usage"]
    assert stream.head(len(stream)).meta["sources"] == stream.meta["sources"]


def test_merged_datasets_keep_every_source_into_the_checkpoint(meetgrid, tmp_path):
    from coopbench.critics.train import TrainConfig, train

    expert = collect(CollectConfig(ENV, expert_episodes=3, reset_episodes=2, seed=1))
    merged = Dataset.concat([expert, planner_data()])
    labels = [s["label"] for s in merged.meta["sources"]]
    assert labels == ["expert", "reset", f"planner:llm/central-v0@{SIM}"]
    assert sum(s["transitions"] for s in merged.meta["sources"]) == len(merged)
    critic, _ = train(merged, TrainConfig(epochs=2, max_seconds=10), tmp_path / "c.pt")
    recorded = resolve.data_of(critic.meta)
    assert recorded["transitions"] == len(merged)
    assert [s["label"] for s in recorded["sources"]] == labels


def test_a_budget_is_the_first_rows_of_the_interleaved_stream(meetgrid):
    cfg = dict(expert_episodes=1, reset_episodes=2, branch=0.3, seed=0)
    small = collect(CollectConfig(ENV, max_transitions=25, **cfg))
    large = collect(CollectConfig(ENV, max_transitions=60, **cfg))
    assert len(small) == 25 and len(large) == 60
    np.testing.assert_array_equal(small.features, large.features[:25])
    np.testing.assert_array_equal(small.returns, large.returns[:25])
    assert {s["source"] for s in large.meta["sources"]} == {"expert", "reset"}
    assert sum(s["transitions"] for s in small.meta["sources"]) == 25


def test_a_planner_stream_says_each_tenth_of_its_rows_and_no_more(meetgrid, capsys):
    env = envs.make(ENV)
    try:
        env.reset(seed=0)
        data = collect_stream(env, DataSource.parse(f"planner:central-v0@{SIM}", 0.2), 40)
        planner_lines = capsys.readouterr().err.splitlines()
        collect_stream(env, DataSource.parse("expert+reset"), 40)  # fast: nothing to say
        plain_lines = capsys.readouterr().err.splitlines()
    finally:
        env.close()
    assert len(data) == 40 and plain_lines == []
    assert 1 <= len(planner_lines) <= 10
    said = [int(line.split()[1].partition("/")[0]) for line in planner_lines]
    assert said == sorted(said) and said[-1] == 40  # rising, ending at the budget
    assert all(f"/40 transitions of planner:llm/central-v0@{SIM}" in line
               for line in planner_lines)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_collects_from_a_planner_and_refuses_bad_input_in_one_line(meetgrid, tmp_path):
    out = tmp_path / "p.npz"
    done = cli("critic", "collect", "--env", ENV, "--from-planner", "central-v0", "--llm", SIM,
               "--epsilon", "0.2", "--episodes", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (source,) = Dataset.load(out).meta["sources"]  # only the planner: expert/reset default 0
    assert source["episodes"] == 2 and source["epsilon"] == 0.2
    capped = cli("critic", "collect", "--env", ENV, "--from-planner", "central-v0", "--llm", SIM,
                 "--max-transitions", "25", "--out", str(tmp_path / "capped.npz"))
    assert capped.returncode == 0, capped.stderr  # the bar counts rows against the cap
    assert len(Dataset.load(tmp_path / "capped.npz")) == 25
    for args in (["--from-planner", "nope-v0"], ["--from-planner", "central-v0", "--epsilon",
                                                 "1.5"], ["--episodes", "3"]):
        bad = cli("critic", "collect", "--env", ENV, "--llm", SIM, "--out",
                  str(tmp_path / "x.npz"), *args)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_data_sources_parse_to_canonical_labels(meetgrid):
    assert DataSource.parse("reset+expert").text == "expert+reset"
    planned = DataSource.parse(f"expert+planner:central-v0@{SIM}", 0.2)
    assert planned.text == f"expert+planner:llm/central-v0@{SIM}"
    assert planned.weights() == (1, 0, 1)  # half the episodes planner-made
    budget = DataBudget(planned, 500)
    assert DataBudget.from_label(budget.label) == budget
    assert DataSource.parse("planner:critic-greedy-v0").llm == ""


def test_a_budgets_discount_is_in_its_label_key_and_targets_only_when_not_the_default(meetgrid):
    plain, discounted = DataSource.parse("expert+reset"), DataSource.parse("expert+reset",
                                                                           gamma=0.8)
    assert DataBudget(plain, 500).label == "expert+reset,n=500"  # old cell keys unchanged
    assert "gamma" not in plain.to_json()  # and so are old cache keys
    budget = DataBudget(discounted, 500)
    assert budget.label == "expert+reset,gamma=0.8,n=500"
    assert DataBudget.from_label(budget.label) == budget
    planned = DataBudget(DataSource.parse(f"planner:central-v0@{SIM}", 0.2, 0.9), 30)
    assert planned.label.endswith(",eps=0.2,gamma=0.9,n=30")
    assert DataBudget.from_label(planned.label) == planned
    plan = expand(spec(critic_data=[{"source": "expert+reset", "gamma": 0.8,
                                     "transitions": [30]}]))
    assert {c.critic_data for c in plan.cells} == {"", "expert+reset,gamma=0.8,n=30"}


def test_a_budgets_discount_reaches_its_monte_carlo_targets(meetgrid):
    from coopbench.critics.budget import collect_stream
    from coopbench.envs import make

    env = make(ENV)
    env.reset(seed=0)
    try:
        stream = collect_stream(env, DataSource.parse("expert", gamma=0.5), 20)
    finally:
        env.close()
    assert stream.meta["gamma"] == 0.5


SPEC = f"""
name: budget
envs: [{ENV}]
planners: [read/read-j-v0, baseline/critic-greedy-v0, llm/central-v0]
llms: ["{SIM}"]
seeds: [0, 1]
critic_data:
  - {{source: expert+reset, transitions: [30, 60]}}
"""


def spec(**extra):
    return parse_spec({**yaml.safe_load(SPEC), **extra})


def test_the_axis_expands_to_one_cell_per_budget_for_critic_planners_only(meetgrid):
    extra = {"critic_data": [{"source": "expert+reset", "transitions": [30, 60]},
                             {"source": f"planner:central-v0@{SIM}", "epsilon": 0.2,
                              "transitions": [30]}]}
    plan = expand(spec(**extra))
    cells = [(c.planner, c.critic_data) for c in plan.cells]
    assert len(cells) == 7
    assert [d for p, d in cells if p == "llm/central-v0"] == [""]
    labels = ["expert+reset,n=30", "expert+reset,n=60",
              f"planner:llm/central-v0@{SIM},eps=0.2,n=30"]
    for planner in ("read/read-j-v0", "baseline/critic-greedy-v0"):
        assert [d for p, d in cells if p == planner] == labels
    keys = [t.cell for t in plan.tasks]
    assert len(set(keys)) == len(keys) == 14
    central = [k for k in keys if k.startswith(f"{ENV}|llm/central-v0|")]
    assert len(central) == 2 and all("critic_data=" not in k for k in central)  # old keys
    assert any(k.endswith("|critic_data=expert+reset,n=30|seed=0") for k in keys)


def test_an_explicit_critic_keeps_a_planner_off_the_axis(meetgrid):
    plan = expand(spec(planners=[{"id": "read/read-j-v0", "kwargs": {"critic": "x.pt"}}]))
    assert [c.critic_data for c in plan.cells] == [""]


@pytest.mark.parametrize("entry, why", [
    ({"source": "nope", "transitions": [30]}, "unknown critic data source"),
    ({"source": "expert+reset", "transitions": [-5]}, "transitions >= 10"),
    ({"source": "expert+reset", "transitions": [30, 30]}, "listed once"),
    ({"source": f"planner:central-v0@{SIM}", "epsilon": 1.5, "transitions": [30]},
     r"epsilon must be in \[0, 1\]"),
    ({"source": "expert", "epsilon": 0.2, "transitions": [30]}, "planner:<id>@<llm> source"),
    ({"source": "planner:nosuch-v0@sim:expert", "transitions": [30]}, "nosuch-v0"),
    ({"source": "planner:central-v0", "transitions": [30]}, "needs an LLM"),
    ({"source": "expert+reset", "gamma": 0, "transitions": [30]}, r"gamma must be in \(0, 1\]"),
])
def test_bad_critic_data_is_one_line(meetgrid, entry, why):
    with pytest.raises(ConfigError, match=why) as info:
        spec(critic_data=[entry])
    assert "\n" not in str(info.value) and "critic_data" in str(info.value)


def test_bad_collect_config_is_one_line():
    with pytest.raises(CoopbenchError, match=r"epsilon must be in \[0, 1\]"):
        CollectConfig(ENV, epsilon=-0.1).check()


def test_matrix_trains_once_per_budget_reuses_the_cache_and_plots(meetgrid, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(resolve, "quality", lambda critic, env: {
        "joint_rank": 0.7, "expert_acceptance": 0.6, "states": 5, "ok": True})
    trained = []
    real = train_module.train

    def counting(data, cfg, out, on_epoch=None):
        trained.append(len(data))
        cfg.epochs = 5
        return real(data, cfg, out, on_epoch)

    monkeypatch.setattr(train_module, "train", counting)
    out = tmp_path / "run"
    assert run_matrix(spec(), out).status == "complete"
    assert sorted(trained) == [30, 60]  # one critic per budget, shared by both planners
    manifest = RunStore(out).read_manifest()
    records = sorted(manifest["critics"], key=lambda r: r["critic_data"]["transitions"])
    assert [r["critic_data"]["transitions"] for r in records] == [30, 60]
    for record, n in zip(records, (30, 60), strict=True):
        assert record["origin"] == "trained"
        assert record["planners"] == ["baseline/critic-greedy-v0", "read/read-j-v0"]
        assert record["data"]["transitions"] == n
        assert [s["label"] for s in record["data"]["sources"]] == ["expert", "reset"]
        assert sum(s["transitions"] for s in record["data"]["sources"]) == n
    episodes, _ = RunStore(out).read_episodes()
    assert len(episodes) == 10 and all(e.error is None for e in episodes)
    assert len({e.cell for e in episodes}) == 10

    summary = summarise(load_runs([out]))
    budget_rows = [r for r in summary["cells"] if "critic_data" in r]
    assert len(budget_rows) == 4 and len({r["algorithm"] for r in budget_rows}) == 4
    (panel,) = summary["critic_budget"]
    assert panel["source"] == "expert+reset"
    assert sorted(panel["lines"]) == ["baseline/critic-greedy-v0",
                                      f"read/read-j-v0 @ {SIM} [free] (sim)"]
    assert [p["transitions"] for p in panel["lines"]["baseline/critic-greedy-v0"]] == [30, 60]
    written = write_plots(summary, tmp_path / "plots")
    assert tmp_path / "plots" / FILE in written and (tmp_path / "plots" / FILE).stat().st_size
    figure = budget_figure(summary)
    success_axes = figure.axes[0]
    drawn = [line.get_label() for line in success_axes.get_lines()]
    assert sorted(drawn) == sorted(panel["lines"])  # one line per planner
    json.dumps(summary)  # the curves are plain JSON
    header, first = format_csv(summary).splitlines()[:2]
    assert header.split(",")[3] == "critic_data" and '"expert+reset,n=30"' in first

    again = tmp_path / "again"  # a second run: every critic from the cache
    trained.clear()
    assert run_matrix(spec(), again).status == "complete"
    assert trained == []
    assert {r["origin"] for r in RunStore(again).read_manifest()["critics"]} == {"cached"}
