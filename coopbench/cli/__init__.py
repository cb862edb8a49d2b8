"""The `coopbench` command (typer + rich).

Errors a user can fix (`CoopbenchError`, bad options) print one red line and exit with
status 2; tracebacks only with `--debug`. Ctrl-C and SIGTERM stop a command the same way
(one line; 130 and 143).
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from typing import TextIO

import typer
from typer._click import exceptions as click_exceptions  # typer 0.29 vendors click

from coopbench.cli._common import console, err_console, shown
from coopbench.cli.credit_cmd import credit_app
from coopbench.cli.critic_cmd import critic_app
from coopbench.cli.envs_warm_cmd import warm as _warm  # noqa: F401  (registers `envs warm`)
from coopbench.cli.llm_cmd import llm_app
from coopbench.cli.matrix_cmd import matrix
from coopbench.cli.play_cmd import play
from coopbench.cli.registry_cmds import envs_app, planners_app
from coopbench.cli.report_cmd import compare, report
from coopbench.cli.run_cmd import run
from coopbench.cli.view_cmd import view
from coopbench.core.errors import CoopbenchError, CoopbenchWarning

app = typer.Typer(
    name="coopbench",
    help="Ground LLM planners in embodied multi-agent collaboration, and benchmark them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(envs_app, name="envs")
app.add_typer(planners_app, name="planners")
app.add_typer(llm_app, name="llm")
app.add_typer(critic_app, name="critic")
app.add_typer(credit_app, name="credit")
app.command()(run)
app.command()(matrix)
app.command()(report)
app.command()(compare)
app.command()(view)
app.command()(play)

_state = {"debug": False, "signal": 0}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def version() -> None:
    """Print coopbench's version."""
    from coopbench import __version__

    console.print(f"coopbench {__version__}")


def _fail(message: str, status: int) -> None:
    err_console.print(f"[red]error:[/red] {shown(message)}", highlight=False, soft_wrap=True)
    sys.exit(status)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (Slurm, systemd, `docker stop`) takes Ctrl-C's path: every command already
    stops cleanly there (manifest `interrupted`, locks released, one line, resumable)."""
    if _state.get("signal"):
        return  # the first one is being handled; SIGKILL follows if it takes too long
    _state["signal"] = signum
    raise KeyboardInterrupt


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """coopbench's own warnings as one line (not Python's two, with a source line)."""
    if issubclass(category, CoopbenchWarning):
        err_console.print(f"[yellow]warning:[/yellow] {shown(message)}", highlight=False,
                          soft_wrap=True)
        return
    _python_showwarning(message, category, filename, lineno, file, line)


def _status(status: int) -> int:
    """130 for Ctrl-C, 143 (128 + 15) for SIGTERM, as shells report them."""
    return 128 + signal.SIGTERM if status == 130 and _state.get("signal") else status


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `coopbench` script."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    _state["signal"] = 0
    warnings.showwarning = _show_warning
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        status = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("interrupted", _status(130))
    except click_exceptions.UsageError as exc:
        if _state["debug"]:
            raise
        _fail(exc.format_message().splitlines()[0] if exc.format_message() else str(exc), 2)
    except CoopbenchError as exc:
        if _state["debug"]:
            raise
        _fail(str(exc), _status(exc.exit_status))
    except KeyboardInterrupt:
        _fail("interrupted", _status(130))
    if status == 130:  # click turns Ctrl-C into Abort and, outside standalone mode, into 130
        _fail("interrupted", _status(130))
    if isinstance(status, int) and status:  # `typer.Exit(n)` ends up here
        sys.exit(status)
