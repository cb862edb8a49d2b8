"""`coopbench envs` and `coopbench planners`: what is registered."""

from __future__ import annotations

import typer
from rich.table import Table

from coopbench.cli._common import console, print_json, shown
from coopbench.core.registry import Registry

envs_app = typer.Typer(help="List registered environments (and manage their caches).")
planners_app = typer.Typer(help="List registered planners.")


MIN_DESCRIPTION = 24  # the caps column is left out when it would leave less for descriptions


def _list(registry: Registry, as_json: bool, title: str) -> None:
    specs = registry.specs()
    if as_json:  # every field: id, description, kwargs, caps, source
        print_json([s.to_json() for s in specs])
        return
    plugins = any(s.source != "builtin" for s in specs)
    widest = max((len(s.source) for s in specs), default=6)
    widest_ids = max((len(s.id) for s in specs), default=2)
    summaries = [s.caps.summary() for s in specs]
    widest_caps = max((len(c) for c in summaries), default=0)
    room = console.width - widest_ids - 2 - (widest + 2 if plugins else 0)
    show_caps = widest_caps > 0 and room - widest_caps - 2 >= MIN_DESCRIPTION
    table = Table(title=f"{len(specs)} {title}", box=None, pad_edge=False, title_justify="left")
    table.add_column("id", style="cyan", no_wrap=True, min_width=widest_ids)  # ids stay whole
    if show_caps:  # a summary; `--json` has every field
        table.add_column("caps", no_wrap=True, min_width=widest_caps)
        room -= widest_caps + 2
    # one line per id at any width: a narrow terminal cuts the description (`--json` has it all)
    table.add_column("description", no_wrap=True, overflow="ellipsis")
    if plugins:  # only worth a column when something came from a plug-in
        table.add_column("source", style="dim", no_wrap=True, min_width=widest)
    for spec, caps in zip(specs, summaries, strict=True):
        table.add_row(shown(spec.id), *([caps] if show_caps else []),
                      shown(_cut(spec.description, room)),
                      *([shown(spec.source)] if plugins else []))
    console.print(table)


def _cut(text: str, room: int) -> str:
    """`text` shortened to `room` characters with an ellipsis (rich crops without one)."""
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


@envs_app.callback(invoke_without_command=True)
def envs(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List registered environment ids with their capabilities and one-line descriptions."""
    if ctx.invoked_subcommand is None:
        from coopbench.envs import registry

        _list(registry, as_json, "environments")


@planners_app.callback(invoke_without_command=True)
def planners(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List registered planner ids with their capabilities and one-line descriptions."""
    if ctx.invoked_subcommand is None:
        from coopbench.planners import registry

        _list(registry, as_json, "planners")
