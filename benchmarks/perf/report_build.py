"""The report viewer at scale: build time of a 1 000-episode run's folder and overview load time.

Run: .venv/bin/python benchmarks/perf/report_build.py [--run results/runs/perf-1000]

The run is a simulated-LLM matrix (`sim:expert`; 2 RoCo tasks x 2 LLM planners x 250 seeds =
1 000 episodes with transcripts), generated on first use and reused afterwards. Measured in the
same run, each command a fresh process as a user would start it:

- reference: `coopbench report RUN --format md` (summary, rliable statistics, report files,
  plots): what every report already costs;
- ours: `coopbench report RUN --format html`, the same plus the report folder (overview,
  cell, episode and compare pages); the ratio is ours / reference, and the pages alone
  (`site.build_site`, in-process, from the same summary) are timed too;
- load: the overview (`report/index.html`) in headless Chromium to its load event, against
  the old one-page `report.html` loaded the same way; and one episode page.

Each build figure is wall time and CPU time (user + system): on a shared machine the CPU
time is what the build costs, the wall time what it took there. Targets (issue 26): the folder
in <= 10 s on 2 cores, the overview in <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SPEC = {
    "name": "perf-1000",
    "description": "report viewer benchmark: 1 000 simulated-LLM episodes",
    "envs": ["roco/sort-level1-v0", "roco/sort-level2-v0"],
    "planners": ["llm/central-v0", "llm/react-v0"],
    "llms": ["sim:expert?noise=0.3"],
    "seeds": list(range(250)),
    "caps": {"max_steps": 10},
    "execution": {"executor": "process", "workers": 2},
}


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines()
             if line.startswith("Model name")]
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} logical CPUs"


def ensure_run(run: Path) -> None:
    episodes = run / "episodes.jsonl"
    if episodes.exists() and sum(1 for _ in episodes.open()) >= 1000:
        return
    from coopbench.runner.matrix import run_matrix
    from coopbench.runner.spec import parse_spec

    print(f"generating {run} (1 000 simulated episodes; once) ...", flush=True)
    start = time.perf_counter()
    run_matrix(parse_spec(SPEC), run, resume=episodes.exists())
    print(f"  {time.perf_counter() - start:.1f} s", flush=True)


def timed_cli(*args: str) -> tuple[float, float]:
    """(wall s, CPU s) of one coopbench command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coopbench", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(times: list[tuple[float, float]]) -> tuple[float, float]:
    """The smallest wall time and the smallest CPU time of the repeats."""
    return min(w for w, _ in times), min(c for _, c in times)


def pages_only(run: Path) -> tuple[float, float]:
    """The pages alone, from the summary the html report just wrote (no statistics)."""
    from coopbench.reporting.summary import load_runs
    from coopbench.reporting.viewer.build import build

    data = load_runs([run])
    summary = json.loads((run / "summary.json").read_text())
    plots = sorted((run / "plots").glob("*.png"))
    start, cpu_start = time.perf_counter(), time.process_time()
    build(run, summary, data, plots)
    return time.perf_counter() - start, time.process_time() - cpu_start


def load_times(run: Path, repeats: int) -> dict[str, float]:
    from coopbench.reporting.viewer.browser import Chromium, find_chromium

    if find_chromium() is None:
        return {}
    root = run / "report"
    episode = sorted((root / "episodes").glob("*.html"))[0]
    pages = {"overview": root / "index.html", "one-page report.html": run / "report.html",
             "episode page": episode}
    out = {}
    with Chromium() as browser:
        browser.open((run / "report.html").resolve().as_uri())  # warm the browser up
        for name, page in pages.items():
            out[name] = min(browser.open(page.resolve().as_uri()) for _ in range(repeats))
    return out


def folder_facts(run: Path) -> str:
    root = run / "report"
    files = [p for p in root.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    return (f"{len(files)} files, {size / 1e6:.1f} MB; index.html "
            f"{(root / 'index.html').stat().st_size / 1e3:.0f} kB; transcripts.jsonl "
            f"{(run / 'transcripts.jsonl').stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("results/runs/perf-1000"))
    parser.add_argument("--repeats", type=int, default=3, help="best of n for each figure")
    args = parser.parse_args()
    ensure_run(args.run)
    run = str(args.run)
    print(f"CPU: {cpu()}")
    md = best([timed_cli("report", run, "--format", "md") for _ in range(args.repeats)])
    html = best([timed_cli("report", run, "--format", "html") for _ in range(args.repeats)])
    pages = best([pages_only(args.run) for _ in range(args.repeats)])
    print("wall s (CPU s: what it costs on an idle machine; this one may be shared)")
    print(f"reference `report --format md`:   {md[0]:6.2f} ({md[1]:5.2f})")
    print(f"ours      `report --format html`: {html[0]:6.2f} ({html[1]:5.2f})  ratio "
          f"{html[0] / md[0]:.2f} wall, {html[1] / md[1]:.2f} CPU; target <= 10 s")
    print(f"          pages alone:            {pages[0]:6.2f} ({pages[1]:5.2f})  "
          f"{folder_facts(args.run)}")
    loads = load_times(args.run, args.repeats)
    if not loads:
        print("no Chromium: load times not measured")
        return
    ref = loads["one-page report.html"]
    for name, seconds in loads.items():
        print(f"load {name:22s} {seconds:6.3f} s  (ratio to report.html {seconds / ref:.2f})"
              + ("  target <= 2 s" if name == "overview" else ""))


if __name__ == "__main__":
    main()
