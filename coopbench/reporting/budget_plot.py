"""`success_vs_critic_data.png`: what critic data buys, for runs with the `critic_data` axis.

One row of panels per (env, data source): success rate (Wilson 95% band over seeds) and LLM
query rounds per success (seed-bootstrap 95% band) against the critic's training transitions
(log scale), one line per planner × model (`summary["critic_budget"]`, built by
`summary.critic_budget_curves`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

FILE = "success_vs_critic_data.png"


def _colours(lines: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(lines)}


def _band(points: list[dict[str, Any]], key: str) -> tuple[list, list, list, list]:
    """x, y, low, high of the points that have a value (no success: no query ratio)."""
    kept = [p for p in points if p[key] is not None]
    lows = [p[f"{key}_ci"][0] if p[f"{key}_ci"] else p[key] for p in kept]
    highs = [p[f"{key}_ci"][1] if p[f"{key}_ci"] else p[key] for p in kept]
    return [p["transitions"] for p in kept], [p[key] for p in kept], lows, highs


def budget_figure(summary: dict[str, Any]) -> Figure:
    """The figure (not saved): tests count its lines."""
    panels = summary["critic_budget"]
    names = sorted({line for panel in panels for line in panel["lines"]})
    colours = _colours(names)
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.6 * len(panels)), dpi=110,
                             squeeze=False)
    for row, panel in zip(axes, panels, strict=True):
        for ax, key, label in ((row[0], "success", "success rate (Wilson 95% band)"),
                               (row[1], "queries_per_success",
                                "LLM query rounds per success (bootstrap 95% band)")):
            for name, points in panel["lines"].items():
                x, y, low, high = _band(points, key)
                ax.plot(x, y, marker="o", ms=4, color=colours[name], label=name, alpha=0.85)
                ax.fill_between(x, low, high, color=colours[name], alpha=0.18, linewidth=0)
            ax.set_xscale("log")
            budgets = sorted({p["transitions"] for pts in panel["lines"].values() for p in pts})
            ax.set_xticks(budgets, [f"{n:,}" for n in budgets])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("critic training transitions")
            ax.set_ylabel(label, fontsize=8)
            ax.grid(alpha=0.3)
            source = "\n".join(textwrap.wrap(f"critic data {panel['source']}", 70))
            ax.set_title(f"{panel['env']}\n{source}", fontsize=7)
        row[0].set_ylim(-0.05, 1.05)
        row[1].set_ylim(bottom=0)
    axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    runs = ", ".join(r["name"] for r in summary["runs"])
    fig.suptitle(f"Success vs critic data: {runs}", fontsize=9)
    fig.tight_layout()
    return fig


def success_vs_critic_data(summary: dict[str, Any], path: Path) -> Path | None:
    """Write the plot when the run has the axis; None otherwise."""
    if not summary.get("critic_budget"):
        return None
    fig = budget_figure(summary)
    fig.savefig(path)
    plt.close(fig)
    return path
