"""Learning curves: one row per PPO update in `curves.jsonl` and `curves.csv`, plus plots.

A row holds the environment steps so far, the episodes that finished during the update (their
mean team return, success rate and any env-specific metric such as soups), and the losses.
TensorBoard gets the same scalars when the `tensorboard` package happens to be installed; it
is never required.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import append_jsonl, read_lines

CURVES = "curves.jsonl"
CURVES_CSV = "curves.csv"


class CurveLog:
    """Appends rows (fsynced JSONL, plus CSV); optional TensorBoard mirror."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.writer = _tensorboard(self.run_dir / "tb") if tensorboard else None

    def rows(self) -> list[dict[str, Any]]:
        return load_rows(self.run_dir)

    def truncate_after(self, update: int) -> None:
        """Drop rows logged after `update` (a resume from an earlier checkpoint)."""
        rows = [r for r in self.rows() if r["update"] <= update]
        path = self.run_dir / CURVES
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        self._rewrite_csv(rows)

    def append(self, row: dict[str, Any]) -> None:
        append_jsonl(self.run_dir / CURVES, row)
        self._rewrite_csv(self.rows())
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "env_steps" and math.isfinite(value):
                    self.writer.add_scalar(key, value, row["env_steps"])
            self.writer.flush()

    def _rewrite_csv(self, rows: list[dict[str, Any]]) -> None:
        keys = sorted({k for r in rows for k in r}, key=_column_order)
        with open(self.run_dir / CURVES_CSV, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _column_order(key: str) -> tuple[int, str]:
    first = ["update", "env_steps", "episodes", "return", "success", "soups"]
    return (first.index(key), key) if key in first else (len(first), key)


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))


def smoothed(rows: Sequence[dict[str, Any]], metric: str, window: int = 3
             ) -> tuple[np.ndarray, np.ndarray]:
    """(env_steps, metric) with each point the episode-weighted mean of the last `window` rows."""
    steps, values = [], []
    for i, row in enumerate(rows):
        recent = [r for r in rows[max(0, i - window + 1) : i + 1] if r.get("episodes")]
        weight = sum(r["episodes"] for r in recent)
        if not weight or metric not in row:
            continue
        steps.append(row["env_steps"])
        values.append(sum(r[metric] * r["episodes"] for r in recent) / weight)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def first_crossing(rows: Sequence[dict[str, Any]], metric: str, threshold: float,
                   window: int = 3) -> int | None:
    """The first env step at which the smoothed `metric` reaches `threshold` (None: never)."""
    steps, values = smoothed(rows, metric, window)
    hits = np.nonzero(values >= threshold)[0]
    return int(steps[hits[0]]) if len(hits) else None


class CurveRow(BaseModel):
    """The keys every reader of a curve row relies on (metrics vary by env)."""

    model_config = ConfigDict(extra="allow")
    update: int
    env_steps: int
    episodes: int = 0


def _row(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("not a curve row (not a JSON object)")
    CurveRow.model_validate(data)
    return data


def load_rows(run_dir: Path | str) -> list[dict[str, Any]]:
    """The run's good rows (a torn or damaged line is skipped)."""
    return read_lines(Path(run_dir) / CURVES, _row).records


def checked_rows(run_dir: Path | str) -> list[dict[str, Any]]:
    """The run's rows; a damaged line (not a torn last one) is one line naming it."""
    path = Path(run_dir) / CURVES
    lines = read_lines(path, _row)
    if lines.bad:
        bad = lines.bad[0]
        raise CoopbenchError(f"{path}:{bad.number}: {bad.reason}")
    return lines.records


def is_training_run(run_dir: Path | str) -> bool:
    """A `coopbench credit train` directory (as opposed to a matrix/run directory)."""
    return (Path(run_dir) / "train.json").exists() and (Path(run_dir) / CURVES).exists()


def default_metric(rows: Sequence[dict[str, Any]]) -> str:
    """Soups where the env reports them (Overcooked), else the team return."""
    return "soups" if any("soups" in r for r in rows) else "return"


def run_summary(run_dir: Path | str, metric: str, threshold: float | None = None
                ) -> dict[str, Any]:
    """Env steps reached, final and best smoothed `metric`, and the first threshold crossing."""
    rows = load_rows(run_dir)
    _, values = smoothed(rows, metric)
    return {
        "run": str(run_dir),
        "env_steps": rows[-1]["env_steps"] if rows else 0,
        "final": float(values[-1]) if len(values) else None,
        "best": float(values.max()) if len(values) else None,
        "first_crossing": (first_crossing(rows, metric, threshold)
                           if threshold is not None else None),
    }


def group_curves(dirs: Iterable[Path | str], metric: str, window: int = 3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(grid, curves): every run's smoothed `metric` on the env steps all of them reached."""
    curves = [smoothed(load_rows(d), metric, window) for d in dirs]
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return np.zeros(0), np.zeros((0, 0))
    grid = np.unique(np.concatenate([c[0] for c in curves]))
    grid = grid[grid <= min(c[0][-1] for c in curves)]
    return grid, np.stack([np.interp(grid, c[0], c[1]) for c in curves])


def mean_crossing(dirs: Iterable[Path | str], metric: str, threshold: float,
                  window: int = 3) -> int | None:
    """The first env step at which the mean over the runs (seeds) reaches `threshold`."""
    grid, ys = group_curves(dirs, metric, window)
    hits = np.nonzero(ys.mean(axis=0) >= threshold)[0] if len(ys) else []
    return int(grid[hits[0]]) if len(hits) else None


def plot(groups: dict[str, Iterable[Path]], metric: str, out: Path | str, *,
         threshold: float | None = None, title: str = "", window: int = 3) -> Path:
    """Mean ± min/max across runs of each group, against env steps, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, dirs in groups.items():
        grid, ys = group_curves(dirs, metric, window)
        if not len(ys):
            continue
        line = ax.plot(grid, ys.mean(axis=0), label=f"{label} (n={len(ys)})")[0]
        ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
