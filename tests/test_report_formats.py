"""Reports: every format, the simulated-LLM mark, marl-eval's shape, plots, compare."""

import csv
import io
import json
import subprocess
import sys
import warnings

import pytest
from typer.testing import CliRunner

from coopbench import envs, planners
from coopbench.cli import app
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import EpisodeResult
from coopbench.reporting.summary import load_runs, marl_eval_json, summarise
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec
from coopbench.runner.store import RunStore

SIM = "sim:expert?noise=0.3"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300)


def invoke(*args):
    """The CLI in this process (fast); exit status and stdout."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


@pytest.fixture
def run_dir(meetgrid, tmp_path):
    envs.registry.ids()  # load built-ins and plug-ins first, then add a second task
    envs.register("meetgrid/meet-small-v0", "coopbench_meetgrid.env:MeetGridEnv", size=3,
                  caps={"agents": 2, "partial_obs": False})
    planners.registry.ids()
    planners.register("meetgrid/peeker-v0", "coopbench_meetgrid.planner:WalkerPlanner",
                      caps={"needs_llm": False, "requires_partial_obs": True})
    spec = parse_spec({
        "name": "fmt", "envs": ["meetgrid/meet-v0", "meetgrid/meet-small-v0"],
        "planners": ["baseline/random-v0", "llm/central-v0", "meetgrid/peeker-v0"],
        "llms": [SIM], "seeds": [0, 1, 2], "episodes_per_seed": 2,
    })
    out = tmp_path / "run"
    run_matrix(spec, out)
    return out


def test_summary_numbers_follow_the_seed_as_unit(run_dir):
    summary = summarise(load_runs([run_dir]))
    cells = {(c["planner"], c["llm"]): c for c in summary["cells"]
             if c["env"] == "meetgrid/meet-v0"}
    central = cells[("llm/central-v0", SIM)]
    assert central["seeds"] == 3 and central["episodes"] == 6 and central["simulated"]
    assert len(summary["cells"]) == 4  # 2 tasks x (random, central); peeker skipped
    assert central["algorithm"].endswith("(sim)")
    episodes, _ = RunStore(run_dir).read_episodes()
    mine = [e for e in episodes if e.planner == "llm/central-v0" and e.env == "meetgrid/meet-v0"]
    per_seed = [sum(e.success for e in mine if e.seed == s) / 2 for s in range(3)]
    assert central["success_rate"] == pytest.approx(sum(per_seed) / 3)
    low, high = central["success_ci"]
    assert 0 <= low <= central["success_rate"] <= high <= 1
    assert cells[("baseline/random-v0", "none")]["llm_queries"]["mean"] == 0
    assert summary["simulated_llms"] == [SIM] and "simulated LLM" in summary["notes"][0]
    assert {s["planner"] for s in summary["skipped"]} == {"meetgrid/peeker-v0"}
    [poi] = summary["improvement"]
    assert poi["tasks"] == 2 and 0 <= poi["low"] <= poi["p"] <= poi["high"] <= 1
    solved = summary["solved_by"][central["algorithm"]]
    assert solved["episodes"] == 12 and solved["steps"] == sorted(solved["steps"])
    assert len(solved["steps"]) == sum(e.success for e in episodes
                                       if e.planner == "llm/central-v0")


def test_every_format_marks_simulated_results(run_dir):
    out = {}
    for fmt in ("md", "html", "json", "csv", "table"):
        status, out[fmt] = invoke("report", str(run_dir), "--format", fmt, "--no-files",
                                  "--paper")
        assert status == 0
        assert ("True" in out[fmt]) if fmt == "csv" else ("(sim)" in out[fmt]), fmt
    assert "## Paper layout (SR / NQ / ES per task)" in out["md"] and "| Avg |" in out["md"]
    assert "skipped meetgrid/meet-v0 × meetgrid/peeker-v0" in out["md"]
    assert "<tr class='sim'>" in out["html"]
    data = json.loads(out["json"])
    assert {"cells", "aggregates", "improvement", "statistics"} <= set(data)
    assert data["aggregates"][0]["tasks"] == 2
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    assert len(rows) == 4 and {r["simulated"] for r in rows} == {"True", "False"}
    assert not (run_dir / "report.md").exists()  # --no-files


def test_report_writes_files_plots_and_a_marl_eval_export(run_dir):
    assert invoke("report", str(run_dir), "--format", "md", "--paper")[0] == 0
    for name in ("report.md", "report.html", "summary.json", "marl_eval.json",
                 "plots/success_vs_queries.png", "plots/per_task_success.png",
                 "plots/solved_within.png",
                 "plots/paper_table.png"):
        path = run_dir / name
        assert path.exists() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    marl = json.loads((run_dir / "marl_eval.json").read_text())
    runs = marl["meetgrid"]["meet-v0"]["llm/central-v0 @ sim:expert?noise=0.3 [free] (sim)"]
    assert sorted(runs) == ["seed_0", "seed_1", "seed_2"]
    seed0 = runs["seed_0"]
    assert seed0["step_0"]["step_count"] == 0 and len(seed0["step_0"]["success"]) == 2
    assert seed0["absolute_metrics"]["llm_queries"] == seed0["step_0"]["llm_queries"]
    assert all("," not in algo for task in marl["meetgrid"].values() for algo in task)


def test_compare_merges_runs_and_refuses_overlapping_cells(run_dir, tmp_path, meetgrid):
    other = tmp_path / "other"
    spec = parse_spec({"name": "other", "envs": ["meetgrid/meet-v0"], "seeds": [0, 1, 2],
                       "planners": ["baseline/expert-v0"]})
    run_matrix(spec, other)
    status, text = invoke("compare", str(run_dir), str(other), "--format", "md", "--out",
                          str(tmp_path / "cmp"))
    assert status == 0
    assert "baseline/expert-v0" in text and "llm/central-v0" in text
    assert (tmp_path / "cmp" / "plots" / "per_task_success.png").exists()
    clash = cli("compare", str(run_dir), str(run_dir))
    assert clash.returncode == 2 and "is in both" in clash.stderr
    missing = cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no run directory" in missing.stderr


def test_a_finished_attempt_wins_over_an_errored_one(tmp_path):
    store = RunStore(tmp_path).create()
    store.write_manifest({"name": "x"})
    base = {"cell": "c|seed=0", "env": "e/t-v0", "planner": "p/q-v0", "llm": "none", "seed": 0}
    store.append_episode(EpisodeResult(**base, error="RuntimeError: boom"))
    store.append_episode(EpisodeResult(**base, success=True, interaction_steps=3))
    data = load_runs([tmp_path])
    assert len(data.episodes) == 1 and data.episodes[0].success
    assert marl_eval_json(data)["e"]["t-v0"]["p/q-v0"]["seed_0"]["step_0"]["success"] == [1.0]
    (tmp_path / "sub").mkdir()
    with pytest.raises(CoopbenchError, match="no manifest.json"):
        load_runs([tmp_path / "sub"])


def test_per_task_plot_fits_long_budget_labels_without_a_layout_warning(tmp_path):
    """Budget rows name their critic source; the legend must fit, not clip or warn."""
    from PIL import Image

    from coopbench.reporting.plots import per_task_success

    algos = [f"read/read-j-scored-v0 @ local [constrained] <critic planner:llm/central-v0@local,"
             f"eps=0.2,gamma=0.8,n={n}>" for n in (50, 200, 800)]
    cells = [{"env": "roco/sort-level1-v0", "algorithm": a, "success_rate": 0.5,
              "success_ci": [0.2, 0.8]} for a in algos]
    summary = {"cells": cells, "runs": [{"name": "budget"}], "simulated_llms": False}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = per_task_success(summary, tmp_path / "per_task.png")
    width, _ = Image.open(path).size
    assert width > 6 * 110  # the canvas grew to hold the legend's widest label
