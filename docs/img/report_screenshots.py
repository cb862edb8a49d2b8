"""Re-make the report viewer screenshots in docs/img/ (docs/runner.md shows them).

Run: .venv/bin/python docs/img/report_screenshots.py [--run results/runs/quick-sim]

It plays `benchmarks/quick.yaml` with the simulated LLM instead of the embedded one (seconds
instead of minutes; every page marks it `(sim)`) and 3 seeds, writes the report folder, and
photographs the overview, the cell of scored ReAd-J on Sort level 1 and its seed-0 episode in
headless Chromium, after checking each page (console, images, links, numbers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from coopbench.reporting.summary import load_runs
from coopbench.reporting.viewer import model
from coopbench.reporting.viewer.browser import Chromium
from coopbench.reporting.viewer.check import check_page, episode_records

HERE = Path(__file__).resolve().parent
SIM = "sim:expert?noise=0.3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("results/runs/quick-sim"))
    args = parser.parse_args()
    spec = yaml.safe_load((HERE.parent.parent / "benchmarks" / "quick.yaml").read_text())
    spec.update(name="quick-sim", llms=[SIM], seeds=[0, 1, 2],
                description="benchmarks/quick.yaml with the simulated LLM, 3 seeds",
                execution={"executor": "serial"})
    args.run.parent.mkdir(parents=True, exist_ok=True)
    spec_path = args.run.parent / "quick-sim.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    coopbench = [sys.executable, "-m", "coopbench"]
    subprocess.run([*coopbench, "matrix", str(spec_path), "--out", str(args.run),
                    "--no-report"], check=True)  # run again, it resumes: nothing new to play
    subprocess.run([*coopbench, "report", str(args.run), "--format", "html"], check=True,
                   stdout=subprocess.DEVNULL)
    [episode] = [e for e in load_runs([args.run]).episodes
                 if e.planner == "read/read-j-scored-v0" and e.env == "roco/sort-level1-v0"
                 and e.seed == 0]
    root = args.run / "report"
    pages = {
        "report-overview.png": root / "index.html",
        "report-cell.png":
            root / "cells" / f"{model.cell_slug(episode.env, episode.planner, SIM)}.html",
        "report-episode.png": root / "episodes" / f"{model.episode_slug(episode)}.html",
    }
    summary = json.loads((root / "summary.json").read_text())
    records = episode_records(args.run)
    with Chromium(width=1280, height=900) as browser:
        for name, page in pages.items():
            problems = check_page(browser, page, summary, records)
            if problems:
                raise SystemExit(f"{page}: {problems}")
            if name == "report-episode.png":  # show one LLM call opened
                browser.evaluate("document.querySelector('details.call').open = true")
            print(browser.screenshot(HERE / name, max_height=1500))


if __name__ == "__main__":
    main()
