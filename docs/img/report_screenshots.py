"""Re-make the report viewer screenshots in docs/img/ (docs/runner.md shows them).

Run: .venv/bin/python docs/img/report_screenshots.py [--run results/runs/quick]
     .venv/bin/python docs/img/report_screenshots.py --sim [--run results/runs/quick-sim]

The first form photographs a finished `make demo` run (`benchmarks/quick.yaml` on the
embedded LLM, what docs/img holds); `--sim` first plays the same matrix with the simulated
LLM (seconds instead of minutes; every page marks it `(sim)`). Either way it writes the report
folder and photographs the overview, the cell of scored ReAd-J on the demo's task and its
seed-0 episode in headless Chromium, after checking each page (console, images, links,
numbers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from coopbench.reporting.labels import model_of
from coopbench.reporting.summary import load_runs
from coopbench.reporting.viewer import model
from coopbench.reporting.viewer.browser import Chromium
from coopbench.reporting.viewer.check import check_page, episode_records

HERE = Path(__file__).resolve().parent
SIM = "sim:expert?noise=0.3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder (default: results/runs/quick, or quick-sim with --sim)")
    parser.add_argument("--sim", action="store_true",
                        help="play the demo matrix with the simulated LLM first")
    args = parser.parse_args()
    run = args.run or Path("results/runs/quick-sim" if args.sim else "results/runs/quick")
    coopbench = [sys.executable, "-m", "coopbench"]
    if args.sim:
        play_with_sim(coopbench, run)
    elif not (run / "episodes.jsonl").is_file():
        raise SystemExit(f"{run}: no finished run here (run `make demo` first, or pass --sim)")
    subprocess.run([*coopbench, "report", str(run), "--format", "html"], check=True,
                   stdout=subprocess.DEVNULL)
    [episode] = [e for e in load_runs([run]).episodes
                 if e.planner == "read/read-j-scored-v0" and e.seed == 0]
    root = run / "report"
    cell = model.cell_slug(episode.env, episode.planner, model_of(episode))
    pages = {
        "report-overview.png": root / "index.html",
        "report-cell.png": root / "cells" / f"{cell}.html",
        "report-episode.png": root / "episodes" / f"{model.episode_slug(episode)}.html",
    }
    summary = json.loads((root / "summary.json").read_text())
    records = episode_records(run)
    with Chromium(width=1280, height=900) as browser:
        for name, page in pages.items():
            problems = check_page(browser, page, summary, records)
            if problems:
                raise SystemExit(f"{page}: {problems}")
            if name == "report-episode.png":  # show one LLM call opened
                browser.evaluate("document.querySelector('details.call').open = true")
            print(browser.screenshot(HERE / name, max_height=1500))


def play_with_sim(coopbench: list[str], run: Path) -> None:
    """`benchmarks/quick.yaml` with the simulated LLM into `run` (resumes if there)."""
    spec = yaml.safe_load((HERE.parent.parent / "benchmarks" / "quick.yaml").read_text())
    spec.update(name="quick-sim", llms=[SIM],
                description="benchmarks/quick.yaml with the simulated LLM",
                execution={"executor": "serial"})
    run.parent.mkdir(parents=True, exist_ok=True)
    spec_path = run.parent / "quick-sim.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    subprocess.run([*coopbench, "matrix", str(spec_path), "--out", str(run), "--no-report"],
                   check=True)


if __name__ == "__main__":
    main()
