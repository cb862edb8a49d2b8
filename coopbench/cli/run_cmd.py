"""`coopbench run`: episodes of one env and planner over seeds, into a run directory.

Everything the user typed is checked here before anything is written; the runner then plays
it as a one-cell matrix (`coopbench.runner.one_cell`): locked, repaired, resumable, and a full
disk stops it at once with the manifest marked `interrupted`. This module only parses and prints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from coopbench import envs, planners
from coopbench.cli._common import console, err_console, shown
from coopbench.cli.kwargs import (
    ENV_KWARG_OPTION,
    PLANNER_KWARG_OPTION,
    STRICT_CRITIC_OPTION,
    build,
    check_env_kwargs,
    check_planner_kwargs,
    parse_kwargs,
)
from coopbench.core.errors import CoopbenchError
from coopbench.llm.backends import spec_help
from coopbench.runner.one_cell import CellRequest, run_cell
from coopbench.runner.seeds import check_episode_count, parse_seeds


def run(
    env: str = typer.Option(..., "--env", help="Env id, e.g. overcooked/cramped_room-v0."),
    planner: str = typer.Option(..., "--planner", help="Planner id, e.g. read-j-v0."),
    llm: str = typer.Option("local", "--llm", help=spec_help()),
    seeds: str = typer.Option("0", "--seeds", help="Seeds: a range 0-9 or a list 0,3,7 "
                              "(at most 1,000,000)."),
    episodes: int = typer.Option(1, "--episodes", min=1, help="Episodes per seed."),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory (created; re-running resumes). Default: "
        "results/runs/<UTC time>-<env name>."),
    env_kwarg: list[str] | None = ENV_KWARG_OPTION,
    planner_kwarg: list[str] | None = PLANNER_KWARG_OPTION,
    strict_critic: bool = STRICT_CRITIC_OPTION,
) -> None:
    """Run episodes of one env with one planner; finished episodes are skipped on re-run."""
    env_spec = envs.registry.spec(env)
    planner_spec = planners.registry.spec(planner)
    env_kwargs = parse_kwargs(env_kwarg, "--env-kwarg")
    planner_kwargs = parse_kwargs(planner_kwarg, "--planner-kwarg")
    check_env_kwargs(env_spec.id, env_kwargs)
    check_planner_kwargs(planner_spec.id, planner_kwargs)
    build("env", env_spec.id, envs.make, env_kwargs).close()  # a refused value: one line, now
    build("planner", planner_spec.id, planners.make, planner_kwargs)
    llm_spec = "none"
    if planner_spec.caps.needs_llm:
        from coopbench import llm as llm_layer

        llm_spec = llm_layer.parse(llm).canonical()  # a refused spec never reaches a file
    seed_list = parse_seeds(seeds)
    check_episode_count(len(seed_list) * episodes, f"--seeds {seeds} x --episodes {episodes}")
    request = CellRequest(env_spec.id, planner_spec.id, llm_spec, seed_list, episodes,
                          env_kwargs, planner_kwargs)
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path("results", "runs", f"{stamp}-{env_spec.name}")
        console.print(f"run directory: {out}", highlight=False, soft_wrap=True)
    with RunProgress(shown(f"{env_spec.id} × {planner_spec.id}")) as progress:
        outcome = run_cell(request, out, listener=progress, strict_critic=strict_critic)
    if outcome.done_before:
        console.print(f"[dim]{outcome.done_before} of {outcome.total} episodes already done")
    (stats,) = outcome.cells.values()
    rate = stats.successes / max(stats.done, 1)
    console.print(
        f"{stats.done} episodes in {out} · success rate {rate:.2f}"
        + (f" · [red]{stats.errors} errors" if stats.errors else "")
    )
    if outcome.status == "failed":
        raise CoopbenchError(f"run failed: {outcome.detail}")


class RunProgress:
    """A progress bar over the episodes left (none in logs); notes go to stderr."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=err_console,
            transient=True, disable=not err_console.is_terminal,  # no stray line in logs
        )
        self.bar: Any = None
        self.successes = self.ran = 0

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "note":
            err_console.print(f"[yellow]{data['message']}", highlight=False, soft_wrap=True)
        elif kind == "start":
            self.bar = self.progress.add_task(self.title, total=data["total"] - data["done"],
                                              status="")
        elif kind == "episode":
            self.ran += 1
            self.successes += bool(data["episode"].success)
            self.progress.update(self.bar, advance=1, status=f"success {self.successes}/{self.ran}")
