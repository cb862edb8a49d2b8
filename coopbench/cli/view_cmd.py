"""`coopbench view`: build a run's static report folder if it is stale, then open it.

Opening never blocks: with no display (a server, CI, a test) it prints the page's path and
`file://` address instead, and `--no-open` always does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from coopbench.cli._common import console, err_console
from coopbench.core.errors import CoopbenchError


def has_display() -> bool:
    """Whether a graphical browser could show a page here (always on macOS and Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_in_browser(index: Path) -> bool:
    """Hand the page to a graphical browser; False when there is none to hand it to."""
    if not has_display():
        return False
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if isinstance(browser, webbrowser.GenericBrowser) and not isinstance(
            browser, webbrowser.BackgroundBrowser):
        return False  # a console browser (lynx, w3m) would take over the terminal
    return bool(browser.open(index.resolve().as_uri()))


def view(
    run_dir: Path = typer.Argument(..., help="A run directory (from `coopbench matrix`/`run`)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even if the folder is fresh."),
    open_page: bool = typer.Option(True, "--open/--no-open",
                                   help="Open the overview in a browser if there is a display."),
    frames: bool = typer.Option(False, "--frames",
                                help="Replay each episode into a GIF when building (slow)."),
) -> None:
    """Build the run's report folder (<run>/report/) if its inputs changed, and open it."""
    from coopbench.cli.report_cmd import write_files, write_site
    from coopbench.credit.curves import is_training_run
    from coopbench.reporting.summary import load_runs, summarise
    from coopbench.reporting.viewer.build import is_stale
    from coopbench.reporting.viewer.site import report_dir

    if not run_dir.is_dir():
        raise CoopbenchError(f"no run directory at {run_dir}")
    if is_training_run(run_dir):
        raise CoopbenchError(f"{run_dir} is a `coopbench credit train` directory; the viewer "
                             "is for matrix runs (use `coopbench report` for its curves)")
    index = report_dir(run_dir) / "index.html"
    if rebuild or frames or is_stale(run_dir):
        data = load_runs([run_dir])
        summary = summarise(data)
        written = write_files(summary, data, run_dir, paper=False)
        index = write_site(run_dir, summary, data, written, frames)
        err_console.print(f"[dim]built {index}", highlight=False)
    else:
        err_console.print(f"[dim]{index} is up to date", highlight=False)
    if open_page and open_in_browser(index):
        console.print(f"opened {index}", highlight=False)
        return
    console.print(f"{index}\n{index.resolve().as_uri()}", highlight=False, soft_wrap=True)
