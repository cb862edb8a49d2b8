"""Statistics for benchmark reports, with the seed as the unit of replication.

- `wilson`: the Wilson score 95% interval of a success rate (sane at 0, 1 and small n).
- `mean_se`: mean and standard error (sample SD / sqrt(n)) of per-seed values.
- `iqm`: interquartile mean (25% trimmed mean) over all runs × tasks, as rliable defines it.
- `stratified_bootstrap`: CI of an aggregate, resampling seeds *within* each task.
- `probability_of_improvement`: P(X > Y) per task from the Mann–Whitney U statistic,
  averaged over tasks, with a stratified bootstrap CI.

Every bootstrap takes a fixed `random_state`, so reports are bit-reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as sps

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` (successes may be fractional)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if p <= 0 else max(0.0, centre - half)  # exact at the edges (no 0.9999...)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return (low, high)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan)
    if arr.size == 1:
        return (float(arr[0]), 0.0)
    return (float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size)))


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of every value in `scores` (any shape)."""
    flat = np.asarray(scores, dtype=float).ravel()
    return float(sps.trim_mean(flat, 0.25)) if flat.size else math.nan


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a (reps, k) array, vectorised (scipy's trim_mean along axis 1)."""
    return np.asarray(sps.trim_mean(samples, 0.25, axis=1), dtype=float)


def stratified_bootstrap(
    per_task: Sequence[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray] = _iqm_rows,
    reps: int = 5000,
    random_state: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(point, low, high) of `statistic` over the concatenated per-task seed scores.

    Each replicate resamples the seeds of every task with replacement (the stratum is the
    task), concatenates them, and applies `statistic` row-wise to a (reps, total) array.
    """
    tasks = [np.asarray(t, dtype=float) for t in per_task if len(t)]
    if not tasks:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(random_state)
    point = float(statistic(np.concatenate(tasks)[None, :])[0])
    draws = [t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks]
    values = statistic(np.concatenate(draws, axis=1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return (point, float(low), float(high))


def _poi_one(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + 0.5 P(X = Y) for one task: Mann–Whitney U / (n_x n_y)."""
    u = sps.mannwhitneyu(x, y, alternative="two-sided").statistic
    return float(u) / (x.size * y.size)


def probability_of_improvement(
    x_tasks: Sequence[np.ndarray],
    y_tasks: Sequence[np.ndarray],
    reps: int = 2000,
    random_state: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(point, low, high) of P(X > Y) averaged over tasks both have (pairs aligned by index)."""
    pairs = [
        (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        for x, y in zip(x_tasks, y_tasks, strict=True)
        if len(x) and len(y)
    ]
    if not pairs:
        return (math.nan, math.nan, math.nan)
    point = float(np.mean([_poi_one(x, y) for x, y in pairs]))
    rng = np.random.default_rng(random_state)
    per_task = []
    for x, y in pairs:
        xs = x[rng.integers(0, x.size, size=(reps, x.size))]
        ys = y[rng.integers(0, y.size, size=(reps, y.size))]
        # vectorised U/(nx ny): fraction of (i, j) pairs with x > y, ties counted half
        gt = (xs[:, :, None] > ys[:, None, :]).mean(axis=(1, 2))
        eq = (xs[:, :, None] == ys[:, None, :]).mean(axis=(1, 2))
        per_task.append(gt + 0.5 * eq)
    values = np.mean(per_task, axis=0)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return (point, float(low), float(high))
