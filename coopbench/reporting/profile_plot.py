"""`performance_profiles.png`: rliable's performance profiles of a summary (matplotlib, Agg).

For each algorithm, the fraction of its runs (seed x task) whose success rate exceeds tau, with
the stratified-bootstrap 95% band that `stats.performance_profiles` computed: a curve that
stays higher is better across the whole score distribution, not only on average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from coopbench.reporting.labels import SIM_MARK  # noqa: E402

FILE = "performance_profiles.png"


def write_profile_plot(summary: dict[str, Any], directory: Path) -> Path | None:
    """Draw the summary's profiles into `directory`; None when there are none."""
    profiles = summary.get("profiles") or {}
    if not profiles:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    cmap = plt.get_cmap("tab10" if len(profiles) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, (algo, p) in enumerate(sorted(profiles.items())):
        colour = cmap(i % cmap.N)
        ax.plot(p["tau"], p["fraction"], color=colour, label=algo, drawstyle="steps-post")
        ax.fill_between(p["tau"], p["low"], p["high"], color=colour, alpha=0.15, step="post")
    names = ", ".join(r["name"] for r in summary["runs"])
    sim = f"  (includes simulated-LLM results {SIM_MARK})" if summary["simulated_llms"] else ""
    ax.set_title(f"Performance profiles: {names}{sim}", fontsize=9)
    ax.set_xlabel("success rate threshold τ (per seed)")
    ax.set_ylabel("fraction of runs with success > τ")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="95% CI: stratified bootstrap (rliable)", title_fontsize=7)
    fig.tight_layout()
    path = directory / FILE
    fig.savefig(path)
    plt.close(fig)
    return path
