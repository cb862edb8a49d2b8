"""`coopbench report` and `coopbench compare`: tables, statistics, plots and exports.

The statistics stack (numpy, scipy, matplotlib) is imported inside the commands, so that
loading the CLI for any other command stays fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from coopbench.cli._common import console, err_console, visible
from coopbench.core.errors import CoopbenchError


class Format(str, Enum):
    table = "table"
    md = "md"
    html = "html"
    json = "json"
    csv = "csv"


def print_table(summary: dict[str, Any]) -> None:
    """Rich tables; unwrapped (200 columns) when stdout is a file or pipe, e.g. a log."""
    from coopbench.reporting import tables

    out = console if console.is_terminal else Console(width=200, file=sys.stdout)
    out.print(tables.format_rich(_visible(summary)))  # tables escape markup themselves


def _visible(data: Any) -> Any:
    """`data` with control characters written out in every string (run files are input)."""
    if isinstance(data, dict):
        return {k: _visible(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_visible(v) for v in data)
    return visible(data) if isinstance(data, str) else data


def emit(summary: dict[str, Any], fmt: Format, paper: bool) -> None:
    """Print `summary` to stdout in `fmt` (plain text for every format but `table`)."""
    from coopbench.reporting import tables

    if fmt is Format.table:
        print_table(summary)
        return
    text = {
        Format.md: lambda: tables.format_markdown(summary, paper),
        Format.html: lambda: tables.format_html(summary, paper),
        Format.json: lambda: tables.format_json(summary),
        Format.csv: lambda: tables.format_csv(summary),
    }[fmt]()
    sys.stdout.write(text)


def write_files(summary: dict[str, Any], data: Any, directory: Path, paper: bool) -> list[Path]:
    """report.md, report.html, summary.json, marl_eval.json and plots/*.png into `directory`."""
    from coopbench.core.io import write_json_atomic
    from coopbench.reporting import tables
    from coopbench.reporting.plots import write_plots
    from coopbench.reporting.profile_plot import write_profile_plot
    from coopbench.reporting.summary import marl_eval_json

    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "report.md").write_text(tables.format_markdown(summary, paper))
        (directory / "report.html").write_text(tables.format_html(summary, paper))
        (directory / "summary.json").write_text(tables.format_json(summary))
        write_json_atomic(directory / "marl_eval.json", marl_eval_json(data))
        plots = write_plots(summary, directory / "plots", paper)
        profile = write_profile_plot(summary, directory / "plots")
        if profile is not None:
            plots.append(profile)
    except OSError as exc:
        raise CoopbenchError(f"cannot write the report into {directory}: {exc.strerror}") from None
    return [directory / "report.md", directory / "summary.json", directory / "marl_eval.json",
            *plots]


def report(
    run_dir: Path = typer.Argument(..., help="A run directory (from `coopbench matrix`/`run`)."),
    fmt: Format = typer.Option(Format.table, "--format", help="Output format on stdout."),
    paper: bool = typer.Option(False, "--paper", help="Add the paper-style SR/NQ/ES table."),
    files: bool = typer.Option(
        True, "--files/--no-files",
        help="Also write report.md/.html, summary.json, marl_eval.json and plots/ into the run "
             "(with --format html: the report folder <run>/report/ too).",
    ),
    frames: bool = typer.Option(
        False, "--frames", help="With --format html: replay each episode into a GIF (slow)."),
) -> None:
    """Per-cell success (Wilson CI), steps/queries/tokens/cost ± SE, IQM and P(improvement).

    With `--format html` it also writes the static report folder `<run>/report/` (overview,
    cell, episode and compare pages; open `index.html`, or use `coopbench view`). Given a
    `coopbench credit train` directory, it reports and plots the learning curves.
    """
    from coopbench.credit.curves import is_training_run
    from coopbench.reporting.summary import load_runs, summarise

    if is_training_run(run_dir):
        report_training(run_dir, fmt, files)
        return
    data = load_runs([run_dir])
    summary = summarise(data)
    emit(summary, fmt, paper)
    if files:
        written = write_files(summary, data, run_dir, paper)
        err_console.print(f"[dim]wrote {', '.join(str(p) for p in written)}", highlight=False)
        if fmt is Format.html:
            index = write_site(run_dir, summary, data, written, frames)
            err_console.print(f"[dim]wrote the report folder: {index}", highlight=False)


def write_site(run_dir: Path, summary: dict[str, Any], data: Any, written: list[Path],
               frames: bool) -> Path:
    """The static report folder `<run>/report/`, from the files `write_files` wrote."""
    from coopbench.reporting.viewer.build import build
    from coopbench.reporting.viewer.model import episode_slug

    gifs = None
    if frames:
        from coopbench.runner.replay import episode_gifs
        from coopbench.runner.store import RunStore

        gifs = episode_gifs(run_dir, RunStore(run_dir).read_manifest() or {}, data.episodes,
                            episode_slug)
        err_console.print(f"[dim]replayed {len(gifs)} of {len(data.episodes)} episodes into "
                          "GIFs", highlight=False)
    return build(run_dir, summary, data, [p for p in written if p.suffix == ".png"],
                 frames=gifs)


def report_training(run_dir: Path, fmt: Format, files: bool) -> None:
    """A PPO run's curves: final and best (smoothed) value per metric; `curves.png`."""
    import json

    from coopbench.core.saved import read_json
    from coopbench.credit.curves import CURVES_CSV, checked_rows, default_metric, plot, run_summary

    rows = checked_rows(run_dir)
    config = read_json(run_dir / "train.json", "training config")
    if not isinstance(config, dict):
        raise CoopbenchError(f"cannot read training config {run_dir / 'train.json'}: "
                             "not a JSON object")
    main_metric = default_metric(rows)
    metrics = [main_metric, *(m for m in ("success", "return") if m != main_metric)]
    summary = {"run": str(run_dir), "env_id": config.get("env_id"),
               "reward": config.get("reward"), "updates": len(rows),
               "metrics": {m: run_summary(run_dir, m) for m in metrics}}
    if fmt is Format.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif fmt is Format.csv:
        sys.stdout.write((run_dir / CURVES_CSV).read_text())
    elif fmt is Format.html:
        raise CoopbenchError("--format html is for matrix runs; a training run has md, table, "
                             "json and csv")
    else:
        head = (f"{summary['env_id']} · reward {summary['reward']} · {summary['updates']} "
                f"updates · {rows[-1]['env_steps']:,} env steps" if rows else "no updates yet")
        lines = [head, "", "| metric | final | best |", "|---|---|---|"]
        for name, numbers in summary["metrics"].items():
            cells = ["-" if numbers[k] is None else f"{numbers[k]:.3f}" for k in ("final", "best")]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
        sys.stdout.write("\n".join(lines) + "\n")
    if files and rows:
        png = plot({str(config.get("reward")): [run_dir]}, main_metric, run_dir / "curves.png",
                   title=f"{config.get('env_id')} · {config.get('reward')}")
        err_console.print(f"[dim]wrote {png}", highlight=False)


def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories to compare."),
    fmt: Format = typer.Option(Format.table, "--format", help="Output format on stdout."),
    paper: bool = typer.Option(False, "--paper", help="Add the paper-style SR/NQ/ES table."),
    out: Path | None = typer.Option(
        None, "--out", help="Also write the comparison's report files and plots here."
    ),
) -> None:
    """Compare planners across several run directories (cells must not overlap)."""
    from coopbench.reporting.summary import load_runs, summarise

    data = load_runs(list(run_dirs))
    summary = summarise(data)
    emit(summary, fmt, paper)
    if out is not None:
        written = write_files(summary, data, out, paper)
        err_console.print(f"[dim]wrote {', '.join(str(p) for p in written)}", highlight=False)
