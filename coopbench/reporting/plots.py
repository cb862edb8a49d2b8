"""PNG plots of a summary (matplotlib, Agg backend: no display needed).

- `success_vs_queries.png`: per planner, success rate against LLM query rounds per episode,
  one point per task (Wilson interval vertically, SE horizontally) and a large marker for the
  planner's mean over tasks.
- `per_task_success.png`: grouped bars of success rate per task and algorithm with Wilson
  95% intervals.
- `solved_within.png`: the fraction of episodes solved within k interaction steps and within
  q LLM query rounds, per algorithm (sample-efficiency curves).
- `success_vs_critic_data.png` (runs with the `critic_data` axis): success and query rounds
  per success against critic training transitions (`budget_plot.py`).
- `paper_table.png` (optional): the SR / NQ / ES grid laid out like the ReAd paper's tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from coopbench.core.metrics import by_name  # noqa: E402
from coopbench.reporting.budget_plot import FILE as BUDGET_FILE  # noqa: E402
from coopbench.reporting.budget_plot import success_vs_critic_data  # noqa: E402
from coopbench.reporting.labels import SIM_MARK  # noqa: E402
from coopbench.reporting.tables import paper_grid  # noqa: E402

# the cell-row keys of the two metrics drawn, as the metrics table names them
SUCCESS, QUERIES = by_name("success"), by_name("llm_queries")
SUCCESS_CI = f"{SUCCESS.name}_ci"


def _title(summary: dict[str, Any], text: str) -> str:
    names = ", ".join(r["name"] for r in summary["runs"])
    sim = "  (includes simulated-LLM results " + SIM_MARK + ")" if summary["simulated_llms"] else ""
    return f"{text}: {names}{sim}"


def _colours(algos: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(algos) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(algos)}


def success_vs_queries(summary: dict[str, Any], path: Path) -> Path:
    cells = summary["cells"]
    algos = sorted({c["algorithm"] for c in cells})
    colours = _colours(algos)
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    for algo in algos:
        rows = [c for c in cells if c["algorithm"] == algo]
        x = np.array([c[QUERIES.report]["mean"] for c in rows])
        y = np.array([c[SUCCESS.report] for c in rows])
        yerr = np.array([[c[SUCCESS.report] - c[SUCCESS_CI][0] for c in rows],
                         [c[SUCCESS_CI][1] - c[SUCCESS.report] for c in rows]])
        xerr = np.array([c[QUERIES.report]["se"] for c in rows])
        ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="o", ms=4, alpha=0.45, capsize=2,
                    color=colours[algo])
        ax.plot([x.mean()], [y.mean()], marker="D", ms=10, color=colours[algo],
                markeredgecolor="black", linestyle="none", label=algo)
    ax.set_xlabel("LLM query rounds per episode (mean over seeds; ± SE)")
    ax.set_ylabel("success rate (Wilson 95% CI)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(left=-0.5)  # 0 queries (no-LLM floors and ceilings) stays visible
    ax.grid(alpha=0.3)
    ax.set_title(_title(summary, "Success vs query rounds"), fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="diamond = mean over tasks", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def per_task_success(summary: dict[str, Any], path: Path) -> Path:
    cells = summary["cells"]
    tasks = sorted({c["env"] for c in cells})
    algos = sorted({c["algorithm"] for c in cells})
    colours = _colours(algos)
    by = {(c["env"], c["algorithm"]): c for c in cells}
    width = 0.8 / max(len(algos), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tasks) * max(1, len(algos) / 3)), 5),
                           dpi=110, layout="constrained")
    for i, algo in enumerate(algos):
        xs, ys, lo, hi = [], [], [], []
        for t, task in enumerate(tasks):
            c = by.get((task, algo))
            if c is None:
                continue
            xs.append(t - 0.4 + width * (i + 0.5))
            ys.append(c[SUCCESS.report])
            lo.append(c[SUCCESS.report] - c[SUCCESS_CI][0])
            hi.append(c[SUCCESS_CI][1] - c[SUCCESS.report])
        ax.bar(xs, ys, width=width, color=colours[algo], label=algo, edgecolor=colours[algo],
               yerr=[lo, hi], capsize=2, error_kw={"elinewidth": 0.8, "alpha": 0.6})
        for x, y in zip(xs, ys, strict=True):  # the rate, so a 0 bar is still readable
            ax.text(x, y + 0.01, f"{y:.1f}", ha="center", va="bottom", fontsize=6,
                    color=colours[algo])
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("success rate (Wilson 95% CI)")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(_title(summary, "Success per task"), fontsize=9)
    # long labels (a critic-data budget names its source) get one column; the figure grows
    # to hold the legend rather than clipping it
    longest = max((len(a) for a in algos), default=0)
    ax.legend(fontsize=7, ncol=1 if longest > 40 else 2, loc="lower center",
              bbox_to_anchor=(0.5, 1.06), frameon=False)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def solved_curves(summary: dict[str, Any], path: Path) -> Path:
    """Fraction of episodes solved within k interaction steps, and within q LLM queries."""
    curves = summary["solved_by"]
    colours = _colours(sorted(curves))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110, sharey=True)
    for ax, key, label in ((axes[0], "steps", "interaction steps"),
                           (axes[1], "queries", "LLM query rounds")):
        right = max((max(c[key]) for c in curves.values() if c[key]), default=1.0) * 1.05
        for algo, curve in curves.items():
            if not curve["episodes"]:
                continue
            xs = np.array(curve[key], dtype=float)
            frac = np.arange(1, xs.size + 1) / curve["episodes"]
            end = frac[-1] if frac.size else 0.0  # never solved: a flat line at 0
            ax.step(np.concatenate([[0], xs, [right]]), np.concatenate([[0], frac, [end]]),
                    where="post", color=colours[algo], label=algo)
        ax.set_xlabel(f"{label} used")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("fraction of episodes solved (all tasks and seeds)")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(_title(summary, "Solved within a budget"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def paper_table(summary: dict[str, Any], path: Path) -> Path:
    tasks, algos, grid = paper_grid(summary)
    fig_w = 1.8 + 1.5 * len(algos)
    fig, ax = plt.subplots(figsize=(fig_w, 0.6 + 0.32 * (len(tasks) + 1)), dpi=110)
    ax.axis("off")
    table = ax.table(cellText=grid, rowLabels=tasks, colLabels=algos, loc="center",
                     cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.3)
    ax.set_title(_title(summary, "SR / NQ / ES"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(summary: dict[str, Any], directory: Path, paper: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    if not summary["cells"]:
        return []
    paths = [success_vs_queries(summary, directory / "success_vs_queries.png"),
             per_task_success(summary, directory / "per_task_success.png"),
             solved_curves(summary, directory / "solved_within.png")]
    if paper:
        paths.append(paper_table(summary, directory / "paper_table.png"))
    budget = success_vs_critic_data(summary, directory / BUDGET_FILE)
    if budget is not None:
        paths.append(budget)
    return paths
