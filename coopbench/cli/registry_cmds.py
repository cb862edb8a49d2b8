"""`coopbench envs` and `coopbench planners`: what is registered."""

from __future__ import annotations

import typer
from rich.table import Table

from coopbench.cli._common import console, print_json
from coopbench.core.registry import Registry

envs_app = typer.Typer(help="List registered environments (and manage their caches).")
planners_app = typer.Typer(help="List registered planners.")


def _list(registry: Registry, as_json: bool, title: str) -> None:
    specs = registry.specs()
    if as_json:
        print_json([s.to_json() for s in specs])
        return
    plugins = any(s.source != "builtin" for s in specs)
    widest = max((len(s.source) for s in specs), default=6)
    table = Table(title=f"{len(specs)} {title}", box=None, pad_edge=False, title_justify="left")
    widest_ids = max((len(s.id) for s in specs), default=2)
    table.add_column("id", style="cyan", no_wrap=True, min_width=widest_ids)  # ids stay whole
    # one line per id at any width: a narrow terminal cuts the description (`--json` has it all)
    table.add_column("description", no_wrap=True, overflow="ellipsis")
    if plugins:  # only worth a column when something came from a plug-in
        table.add_column("source", style="dim", no_wrap=True, min_width=widest)
    room = console.width - widest_ids - 2 - (widest + 2 if plugins else 0)
    for spec in specs:
        table.add_row(spec.id, _cut(spec.description, room), *([spec.source] if plugins else []))
    console.print(table)


def _cut(text: str, room: int) -> str:
    """`text` shortened to `room` characters with an ellipsis (rich crops without one)."""
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


@envs_app.callback(invoke_without_command=True)
def envs(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List registered environment ids with one-line descriptions."""
    if ctx.invoked_subcommand is None:
        from coopbench.envs import registry

        _list(registry, as_json, "environments")


@planners_app.callback(invoke_without_command=True)
def planners(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List registered planner ids with one-line descriptions."""
    if ctx.invoked_subcommand is None:
        from coopbench.planners import registry

        _list(registry, as_json, "planners")
