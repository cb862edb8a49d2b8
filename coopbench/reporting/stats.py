"""Statistics for benchmark reports, with the seed as the unit of replication.

The aggregate statistics come from rliable (Agarwal et al., 2021), the library marl-eval and
BenchMARL build on, so the figures are the field's own:
- `iqm`: interquartile mean over all runs x tasks (`rliable.metrics.aggregate_iqm`);
- `stratified_bootstrap`: its 95% CI, resampling seeds within each task
  (`rliable.library.get_interval_estimates`, percentile method);
- `probability_of_improvement`: P(X > Y) per task (Mann-Whitney U), averaged over tasks, with a
  stratified bootstrap CI (rliable's bootstrap over `improvement`, a vectorised form of
  `rliable.metrics.probability_of_improvement` that gives the same numbers);
- `performance_profiles`: the fraction of runs scoring above each threshold, with CIs
  (`rliable.library.create_performance_profile`).

What rliable lacks stays here: `wilson` (the Wilson score interval of one cell's success rate,
sane at 0, 1 and small n) and `mean_se` (mean and standard error over seeds).

rliable 1.2.0 takes a runs x tasks matrix, and its stratified bootstrap draws its indices from
NumPy's global generator (`np.random.choice` in `StratifiedBootstrap.update_indices`), whatever
`random_state` it is given (passing one only earns arch 7's deprecation warning). Each call here
therefore seeds that global generator with `random_state` and restores its previous state
afterwards: reports are bit-reproducible and nothing else in the process sees a changed state.
rliable (with arch and pandas) is imported on first use: it takes about 2 s.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

Z95 = 1.959963984540054
PROFILE_TAUS = np.linspace(0.0, 1.0, 21)  # success-rate thresholds of the performance profile


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


def _rliable() -> tuple[Any, Any]:
    from rliable import library, metrics

    return library, metrics


@contextlib.contextmanager
def seeded_global_rng(random_state: int) -> Iterator[None]:
    """Seed NumPy's global generator (which rliable's bootstrap draws from), then restore it."""
    saved = np.random.get_state()
    np.random.seed(random_state)
    try:
        yield
    finally:
        np.random.set_state(saved)


def runs_by_tasks(per_task: Sequence[np.ndarray]) -> np.ndarray:
    """rliable's (runs, tasks) matrix from per-task seed scores (empty tasks dropped).

    Tasks with unequal seed counts keep their first n seeds, n the smallest count: rliable's
    stratified bootstrap needs one number of runs per task.
    """
    tasks = [np.asarray(t, dtype=float).ravel() for t in per_task if len(t)]
    if not tasks:
        return np.zeros((0, 0))
    n = min(t.size for t in tasks)
    return np.stack([t[:n] for t in tasks], axis=1)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of every value in `scores` (rliable's `aggregate_iqm`)."""
    flat = np.asarray(scores, dtype=float)
    if not flat.size:
        return math.nan
    return float(_rliable()[1].aggregate_iqm(flat))


def stratified_bootstrap(
    per_task: Sequence[np.ndarray],
    reps: int = 5000,
    random_state: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(IQM, low, high): rliable's stratified-bootstrap interval (seeds resampled per task)."""
    scores = runs_by_tasks(per_task)
    if not scores.size:
        return (math.nan, math.nan, math.nan)
    library, metrics = _rliable()
    with seeded_global_rng(random_state):
        point, interval = library.get_interval_estimates(
            {"x": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps,
            confidence_interval_size=confidence,
        )
    return (float(point["x"][0]), float(interval["x"][0][0]), float(interval["x"][1][0]))


def improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's `metrics.probability_of_improvement`, vectorised over tasks: per task the
    Mann-Whitney U / (n_x n_y) (P(X > Y) + P(X = Y) / 2), averaged over tasks.

    U comes from mid-ranks as in `scipy.stats.mannwhitneyu` (ranks are multiples of 1/2, so
    their sums are exact and the numbers equal rliable's to the bit; tested), with one
    `rankdata` per bootstrap replicate instead of one `mannwhitneyu` per task and replicate,
    which made a pair of algorithms cost seconds.
    """
    x, y = np.asarray(scores_x, dtype=float), np.asarray(scores_y, dtype=float)
    nx, ny = x.shape[0], y.shape[0]
    ranks = sps.rankdata(np.concatenate([x, y]), axis=0)
    u = ranks[:nx].sum(axis=0) - nx * (nx + 1) / 2
    return float(np.mean([float(v) / (nx * ny) for v in u]))


def probability_of_improvement(
    x_tasks: Sequence[np.ndarray],
    y_tasks: Sequence[np.ndarray],
    reps: int = 2000,
    random_state: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(P(X > Y), low, high) over the tasks both have (pairs aligned by index), by rliable."""
    pairs = [(x, y) for x, y in zip(x_tasks, y_tasks, strict=True) if len(x) and len(y)]
    if not pairs:
        return (math.nan, math.nan, math.nan)
    xs = runs_by_tasks([x for x, _ in pairs])
    ys = runs_by_tasks([y for _, y in pairs])
    library, _ = _rliable()
    with seeded_global_rng(random_state):
        point, interval = library.get_interval_estimates(
            {"xy": [xs, ys]}, improvement, reps=reps,
            confidence_interval_size=confidence,
        )
    low, high = np.asarray(interval["xy"], dtype=float).ravel()[:2]
    return (float(point["xy"]), float(low), float(high))


def _score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's default profile (`score_distributions`: mean(scores > tau) for each tau), in
    one vectorised step instead of one Python call per tau and bootstrap replicate."""
    return (np.asarray(scores)[..., None] > np.asarray(taus)).reshape(-1, len(taus)).mean(axis=0)


def performance_profiles(
    per_algorithm: Mapping[str, Sequence[np.ndarray]],
    taus: np.ndarray = PROFILE_TAUS,
    reps: int = 2000,
    random_state: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Per algorithm: the fraction of runs (seeds x tasks) with a score above each tau, and
    its stratified-bootstrap 95% band (rliable's score distributions)."""
    scores = {name: runs_by_tasks(tasks) for name, tasks in per_algorithm.items()}
    scores = {name: m for name, m in scores.items() if m.size}
    if not scores:
        return {}
    library, _ = _rliable()
    out: dict[str, dict[str, list[float]]] = {}
    for name in sorted(scores):  # one call per algorithm: each is seeded the same way
        with seeded_global_rng(random_state):
            profile, band = library.create_performance_profile(
                {name: scores[name]}, taus, reps=reps, custom_profile_func=_score_distribution)
        out[name] = {"tau": [float(t) for t in taus],
                     "fraction": [float(v) for v in profile[name]],
                     "low": [float(v) for v in band[name][0]],
                     "high": [float(v) for v in band[name][1]]}
    return out


def ratio_interval(numerators: Sequence[float], denominators: Sequence[float],
                   reps: int = 5000, random_state: int = 0,
                   confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of sum(numerators) / sum(denominators), resampling the
    units (seeds) with replacement; replicates whose denominator is 0 are left out. None when
    the denominator is 0 in the data itself (no ratio to bound)."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    if not num.size or den.sum() <= 0:
        return None
    rng = np.random.default_rng(random_state)
    picks = rng.integers(num.size, size=(reps, num.size))
    tops, bottoms = num[picks].sum(axis=1), den[picks].sum(axis=1)
    ratios = tops[bottoms > 0] / bottoms[bottoms > 0]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return (float(low), float(high))
