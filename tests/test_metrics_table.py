"""The metrics table (`core/metrics.py`) is the one place a metric is declared.

Adding one is one entry there: the test below copies the package, adds `feedback_rounds` to
`METRICS` (the diff is `SAMPLE`), and finds it in the episode line, the summary, the table,
the CSV and the marl-eval export without touching any other file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from coopbench.core import metrics
from coopbench.core.types import EpisodeResult
from coopbench.reporting import tables

PACKAGE = Path(__file__).resolve().parent.parent / "coopbench"
ANCHOR = '    Metric("cache_hits", step=_usage("cache_hits")),\n'
SAMPLE = ('    Metric("feedback_rounds", step=lambda s: s.plan.feedback_rounds,\n'
          '           report="feedback_rounds", label="feedback ± SE", csv="feedback",\n'
          '           marl_eval="feedback_rounds"),\n')


def test_episode_fields_columns_and_exports_come_from_the_table():
    fields = [f.name for f in dataclasses.fields(EpisodeResult)]
    recorded = [m.field for m in metrics.recorded()]
    assert fields[6:6 + len(recorded)] == recorded  # after the identity fields, in table order
    labels = [name for name, _ in tables.CELL_COLUMNS]
    assert labels[3:-1] == [m.label for m in metrics.reported()]
    assert [m.marl_eval for m in metrics.exported()] == [
        "success", "return", "interaction_steps", "llm_queries", "llm_tokens_in",
        "llm_tokens_out", "cost_usd"]
    assert EpisodeResult(cell="c", env="e", planner="p", llm="l", seed=0).to_json()["return"] == 0.0


def test_every_metric_is_complete():
    for m in metrics.METRICS:
        assert m.recorded or m.value is not None, m.name  # a derived one says how
        if m.report is not None:
            assert m.label, m.name


def test_a_sample_metric_is_one_entry(tmp_path):
    copy = tmp_path / "src" / "coopbench"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    table = copy / "core" / "metrics.py"
    source = table.read_text()
    assert source.count(ANCHOR) == 1
    table.write_text(source.replace(ANCHOR, SAMPLE + ANCHOR))  # the only change
    changed = [p.relative_to(copy) for p in copy.rglob("*.py")
               if p.read_bytes() != (PACKAGE / p.relative_to(copy)).read_bytes()]
    assert changed == [Path("core/metrics.py")]

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "COOPBENCH_LLM_CACHE": "off"}
    script = (
        "import sys; from coopbench.cli import main; main(sys.argv[1:])"
    )

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("run", "--env", "roco/sweep-y1g1-v0", "--planner", "llm/central-v0", "--llm",
        "sim:expert?noise=0.5&seed=0", "--seeds", "0-1", "--out", str(run))
    lines = [json.loads(x) for x in (run / "episodes.jsonl").read_text().splitlines()]
    assert all(isinstance(line["feedback_rounds"], int) for line in lines)
    header = cli("report", str(run), "--format", "csv", "--no-files").splitlines()[0]
    assert "feedback_mean,feedback_se" in header
    assert "feedback ± SE" in cli("report", str(run), "--format", "md")
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["cells"][0]["feedback_rounds"]) == {"mean", "se"}
    exported = json.loads((run / "marl_eval.json").read_text())
    seed = exported["roco"]["sweep-y1g1-v0"][next(iter(exported["roco"]["sweep-y1g1-v0"]))]
    assert "feedback_rounds" in seed["seed_0"]["absolute_metrics"]
