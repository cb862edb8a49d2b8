"""Matrix runner scaling: the same CPU-bound matrix with 1 and 2 workers, in one run.

The matrix plays Overcooked-AI (real dynamics) with LLM planners on the simulated LLM, so the
work is CPU-bound Python in the workers. It prints episodes/s for the process pool with 1 and
2 workers and their ratio (target >= 1.6x on 2 cores), then runs the matrix on a local Ray
instance with 2 workers and checks that its report equals the process pool's.

    .venv/bin/python benchmarks/perf/runner_scaling.py [--seeds 0-39] [--repeat 2] [--no-ray]

Timings are wall clock on a shared machine: run it when nothing else is busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from coopbench.reporting.summary import load_runs, summarise
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec


def matrix(seeds: str):
    return parse_spec({
        "name": "runner-scaling",
        "envs": ["overcooked/cramped_room-read-v0", "overcooked/forced_coordination-read-v0"],
        "planners": ["llm/central-v0", "llm/react-v0"],
        "llms": ["sim:expert?noise=0.3&garble=0.05"],
        "seeds": seeds,
    }, "runner_scaling")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(spec, out: Path, executor: str, workers: int) -> tuple[float, float, float, int]:
    """(wall s, CPU s of this coordinating process, CPU s of the workers, episodes run)."""
    start, cpu, kids = time.perf_counter(), time.process_time(), children_cpu()
    outcome = run_matrix(spec, out, executor=executor, workers=workers)
    return (time.perf_counter() - start, time.process_time() - cpu, children_cpu() - kids,
            outcome.ran)


def numbers(out: Path) -> dict:
    summary = summarise(load_runs([out]))
    summary.pop("runs")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-39", help="seed range of the matrix")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count")
    args = parser.parse_args()
    spec = matrix(args.seeds)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_matrix(spec.model_copy(update={"seeds": [0]}), root / "warm")  # imports, caches
        one = two = float("inf")
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for rep in range(args.repeat):  # interleaved; the fastest of each counts
            t1, _, k1, n = timed(spec, root / f"w1-{rep}", "process", 1)
            t2, cpu2, k2, _ = timed(spec, root / f"w2-{rep}", "process", 2)
            if t1 < one:
                one, par1 = t1, k1 / t1
            if t2 < two:
                two, par2, coord = t2, k2 / t2, cpu2
        print(f"episodes: {n} (best of {args.repeat})")
        print(f"process pool, 1 worker : {one:7.2f} s  ({n / one:6.1f} episodes/s, "
              f"workers used {par1:.2f} CPUs)")
        print(f"process pool, 2 workers: {two:7.2f} s  ({n / two:6.1f} episodes/s, "
              f"workers used {par2:.2f} CPUs)")
        print(f"coordinating process CPU with 2 workers: {coord:.2f} s")
        print(f"speed-up 2 vs 1 workers: {one / two:.2f}x (target >= 1.6x on 2 cores)")
        print(f"load average after: {os.getloadavg()[0]:.1f} (other processes compete "
              "for the same cores when it is above the CPU count)")
        same = numbers(root / "w1-0") == numbers(root / "w2-0")
        print(f"1 and 2 workers report the same numbers: {same}")
        if not args.no_ray:
            ray_s, _, _, _ = timed(spec, root / "ray", "ray", 2)
            same_ray = numbers(root / "ray") == numbers(root / "w2-0")
            print(f"ray, 2 workers         : {ray_s:7.2f} s  (includes starting Ray)")
            print(f"ray reports the same numbers as the process pool: {same_ray}")


if __name__ == "__main__":
    main()
