"""`coopbench matrix SPEC --out DIR`: run a benchmark matrix with a live display, then report.

The runner is imported inside the command, so loading the CLI for other commands stays fast.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from coopbench.cli._common import console, err_console, shown
from coopbench.cli.kwargs import STRICT_CRITIC_OPTION
from coopbench.cli.report_cmd import print_table, write_files
from coopbench.core.errors import CoopbenchError, Interrupted
from coopbench.reporting.labels import algorithm_label

if TYPE_CHECKING:
    from coopbench.runner.matrix import CellStats

MAX_ROWS = 14  # cells shown live; the rest are summarised in one line


class ExecutorKind(str, Enum):
    serial = "serial"
    process = "process"
    ray = "ray"


class LiveDisplay:
    """Overall progress with ETA, and running success rate and queries per cell."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=err_console,
        )
        self.bar: Any = None
        self.live: Live | None = None
        self.cells: dict[tuple[str, str, str], CellStats] = {}
        self.recent: list[tuple[str, str, str]] = []
        self.lines_only = not err_console.is_terminal

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "note":
            err_console.print(f"[yellow]{shown(data['message'])}", highlight=False, soft_wrap=True)
        elif kind == "start":
            self.cells = data["cells"]
            todo = data["total"] - data["done"]
            err_console.print(
                f"[dim]{data['done']} of {data['total']} episodes already done; running {todo} "
                f"on {data['executor']} × {data['workers']}", highlight=False,
            )
            self.bar = self.progress.add_task("matrix", total=data["total"],
                                              completed=data["done"], status="")
            if not self.lines_only:
                self.live = Live(self._panel(), console=err_console, refresh_per_second=4)
                self.live.start()
        elif kind == "episode":
            self._episode(data)

    def _episode(self, data: dict[str, Any]) -> None:
        from coopbench.runner.matrix import group_of

        group = group_of(data["episode"])
        if group in self.recent:
            self.recent.remove(group)
        self.recent.insert(0, group)
        done = sum(c.done for c in self.cells.values())
        wins = sum(c.successes for c in self.cells.values())
        self.progress.update(self.bar, advance=1,
                             status=f"success {wins}/{done}" if done else "")
        if self.live is not None:
            self.live.update(self._panel())
        else:
            stats = self.cells.get(group)
            if stats is not None and stats.done == stats.total:
                err_console.print(self._line(group, stats), highlight=False)

    def _line(self, group: tuple[str, str, str], c: CellStats) -> str:
        rate = c.successes / c.done if c.done else 0.0
        queries = c.queries / c.done if c.done else 0.0
        return (shown(f"{group[0]} · {algorithm_label(group[1], group[2])}") + f": {c.done}/"
                f"{c.total} success {rate:.2f} queries/ep {queries:.1f}")

    def _panel(self) -> Group:
        """The live panel: overall progress and the most recently updated cells."""
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("task", "algorithm", "done", "success", "queries/ep", "errors"):
            table.add_column(name)
        listed = self.recent[:MAX_ROWS] or list(self.cells)[:MAX_ROWS]
        for group in listed:
            c = self.cells[group]
            table.add_row(
                shown(group[0]), shown(algorithm_label(group[1], group[2])), f"{c.done}/{c.total}",
                f"{c.successes / c.done:.2f}" if c.done else "—",
                f"{c.queries / c.done:.1f}" if c.done else "—", str(c.errors) if c.errors else "",
            )
        hidden = len(self.cells) - len(listed)
        parts: list[Any] = [self.progress, table]
        if hidden > 0:
            parts.append(f"[dim]… and {hidden} more cells")
        return Group(*parts)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def show_plan(spec: Any, out: Path, source: str) -> None:
    """What `matrix` would run: cells with episodes done/total, skipped cells and why."""
    from coopbench.runner.matrix import dry_run, group_of

    plan, done = dry_run(spec, out, source)
    table = Table(title=f"{spec.name}: {len(plan.cells)} cells", title_justify="left")
    for name in ("task", "algorithm", "episodes", "done"):
        table.add_column(name)
    totals: dict[tuple[str, str, str], list[int]] = {}
    for t in plan.tasks:
        entry = totals.setdefault(group_of(t), [0, 0])
        entry[0] += 1
        entry[1] += t.key in done
    for (env, planner, llm), (n, k) in totals.items():
        table.add_row(shown(env), shown(algorithm_label(planner, llm)), str(n), str(k))
    console.print(table)
    for s in plan.skipped:
        console.print(shown(f"skipped {s['env']} × {s['planner']}: {s['reason']}"), highlight=False)
    left = sum(t.key not in done for t in plan.tasks)
    console.print(f"{left} of {len(plan.tasks)} episodes left to run into {out}",
                  highlight=False)


def matrix(
    spec_path: Path = typer.Argument(..., help="Matrix spec (YAML), e.g. benchmarks/quick.yaml."),
    out: Path = typer.Option(..., "--out", help="Run directory (created; re-running resumes)."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Episodes at once (default: the spec's)."),
    executor: ExecutorKind | None = typer.Option(
        None, "--executor", help="serial, process or ray (default: the spec's)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Require an existing run in --out (re-running resumes anyway)."
    ),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster address for --executor ray (default: local)."
    ),
    report: bool = typer.Option(True, "--report/--no-report",
                                help="Write report files and print the table when done."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="List cells, skipped cells and what is left; run nothing."),
    strict_critic: bool = STRICT_CRITIC_OPTION,
) -> None:
    """Run every cell of a matrix; finished episodes are skipped on re-run."""
    from coopbench.reporting.summary import load_runs, summarise
    from coopbench.runner.budget import BudgetExceeded
    from coopbench.runner.matrix import budget_message, run_matrix
    from coopbench.runner.spec import load_spec

    spec = load_spec(spec_path)
    if dry_run:
        show_plan(spec, out, str(spec_path))
        return
    kind = executor.value if executor is not None else None
    if workers and workers > 1 and kind is None and spec.execution.executor == "serial":
        kind = "process"  # --workers 2 on a serial spec means: run two at once
    display = LiveDisplay()
    try:
        outcome = run_matrix(spec, out, source=str(spec_path), executor=kind, workers=workers,
                             ray_address=ray_address, resume=resume, listener=display,
                             strict_critic=strict_critic)
    except KeyboardInterrupt:
        display.stop()
        raise Interrupted(f"interrupted; finished episodes are saved in {out}: "
                          "run the same command again to resume") from None
    finally:
        display.stop()
    skipped = outcome.plan.skipped
    for s in skipped:
        err_console.print("[dim]" + shown(f"skipped {s['env']} × {s['planner']}: {s['reason']}"),
                          highlight=False)
    if report:
        data = load_runs([out])
        summary = summarise(data)
        print_table(summary)
        write_files(summary, data, out, paper=False)
    done = outcome.done_before + outcome.ran
    console.print(f"{done} of {outcome.total} episodes in {out} ({outcome.ran} run now)",
                  highlight=False)
    if outcome.status == "stopped":
        raise BudgetExceeded(budget_message(outcome, str(spec_path)))
    if outcome.status == "failed":
        raise CoopbenchError(f"run failed: {outcome.detail}")
