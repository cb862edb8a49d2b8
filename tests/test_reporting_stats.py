"""Statistics: hand-computed values, brute-force definitions, and rliable's own figures.

The aggregate statistics are rliable's (IQM, stratified bootstrap, probability of improvement,
performance profiles); these tests call rliable directly on the same data with the same
seed and require the report's numbers to be exactly equal.
"""

import itertools
import math

import numpy as np
import pytest
from rliable import library as rly
from rliable import metrics

from coopbench.core.types import EpisodeResult
from coopbench.reporting import stats
from coopbench.reporting.summary import (
    BOOTSTRAP_REPS,
    POI_REPS,
    RANDOM_STATE,
    RunData,
    summarise,
)


def test_wilson_matches_the_formula_and_is_sane_at_the_edges():
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = stats.wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = stats.wilson(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_mean_and_standard_error():
    mean, se = stats.mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert stats.mean_se([7.0]) == (7.0, 0.0)
    assert all(math.isnan(x) for x in stats.mean_se([]))


def test_iqm_drops_the_outer_quarters():
    assert stats.iqm(np.array([0, 0, 1, 1, 1, 1, 100, 100])) == 1.0
    assert stats.iqm(np.arange(8)) == pytest.approx(3.5)
    assert math.isnan(stats.iqm(np.array([])))


def _rliable_iqm(scores: np.ndarray, reps: int, seed: int):
    np.random.seed(seed)  # rliable's bootstrap draws from NumPy's global generator
    return rly.get_interval_estimates({"a": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]),
                                      reps=reps)


def test_stratified_bootstrap_is_rliables_own_on_a_fixed_random_state():
    rng = np.random.default_rng(3)
    tasks = [rng.random(10), rng.random(10) + 1]
    ours = stats.stratified_bootstrap(tasks, reps=500, random_state=7)
    point, interval = _rliable_iqm(np.stack(tasks, axis=1), reps=500, seed=7)
    assert ours == (point["a"][0], interval["a"][0][0], interval["a"][1][0])
    assert ours == stats.stratified_bootstrap(tasks, reps=500, random_state=7)  # reproducible
    assert ours != stats.stratified_bootstrap(tasks, reps=500, random_state=8)
    assert ours[1] <= ours[0] <= ours[2]
    # a task where every seed agrees contributes no variance: constant tasks -> zero width
    assert stats.stratified_bootstrap([np.ones(5), np.zeros(5)], reps=200)[1:] == (0.5, 0.5)
    assert all(math.isnan(x) for x in stats.stratified_bootstrap([np.array([])]))


def test_the_global_generator_is_left_as_it_was():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    stats.stratified_bootstrap([np.arange(4.0), np.arange(4.0)], reps=50, random_state=0)
    stats.probability_of_improvement([np.arange(4.0)], [np.ones(4)], reps=50)
    assert (np.random.random(3) == expected).all()


def test_unequal_seed_counts_keep_the_first_n_of_each_task():
    m = stats.runs_by_tasks([np.array([1.0, 2, 3]), np.array([4.0, 5]), np.array([])])
    assert m.tolist() == [[1.0, 4.0], [2.0, 5.0]]
    assert stats.runs_by_tasks([]).size == 0


def brute_poi(x, y):
    pairs = list(itertools.product(x, y))
    return sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)


def test_the_vectorised_improvement_is_rliables_to_the_bit():
    rng = np.random.default_rng(5)
    for _ in range(300):
        nx, ny, tasks = rng.integers(1, 7, size=3)
        x = rng.integers(0, 3, size=(nx, tasks)) / 2  # per-seed success rates: many ties
        y = rng.integers(0, 3, size=(ny, tasks)) / 2
        assert stats.improvement(x, y) == metrics.probability_of_improvement(x, y)
    x = rng.random((4, 3))
    assert stats.improvement(x, x) == 0.5 == metrics.probability_of_improvement(x, x)


def test_probability_of_improvement_is_mann_whitney_over_pairs_and_rliables_ci():
    x = [np.array([1, 1, 0, 1.0]), np.array([0.5, 0.2, 0.9, 0.3])]
    y = [np.array([0, 1, 0, 0.0, 1]), np.array([0.4, 0.4, 0.1, 0.2, 0.0])]
    point, low, high = stats.probability_of_improvement(x, y, reps=300, random_state=1)
    expected = (brute_poi(x[0], y[0]) + brute_poi(x[1], y[1])) / 2
    assert point == pytest.approx(expected) and low <= point <= high
    np.random.seed(1)
    p, ci = rly.get_interval_estimates({"xy": [np.stack(x, 1), np.stack(y, 1)]},
                                       metrics.probability_of_improvement, reps=300)
    assert (point, low, high) == (p["xy"], ci["xy"][0][0], ci["xy"][1][0])
    same = stats.probability_of_improvement([np.ones(4)], [np.ones(4)], reps=50)
    assert same == (0.5, 0.5, 0.5)
    assert stats.probability_of_improvement([np.ones(3)], [np.zeros(3)], reps=50)[0] == 1.0
    assert all(math.isnan(v) for v in stats.probability_of_improvement([[]], [[]]))


def test_performance_profiles_are_rliables_score_distributions():
    tasks = {"a": [np.array([0.0, 0.5, 1.0]), np.array([1.0, 1.0, 0.5])],
             "b": [np.array([0.0, 0.0, 0.5]), np.array([0.5, 0.0, 0.0])]}
    ours = stats.performance_profiles(tasks, reps=100, random_state=4)
    for name in ("a", "b"):
        np.random.seed(4)
        profile, band = rly.create_performance_profile(
            {name: np.stack(tasks[name], 1)}, stats.PROFILE_TAUS, reps=100)
        assert ours[name]["fraction"] == profile[name].tolist()
        assert ours[name]["low"] == band[name][0].tolist()
        assert ours[name]["high"] == band[name][1].tolist()
    assert ours["a"]["fraction"][0] == pytest.approx(5 / 6)  # runs above tau = 0
    assert stats.performance_profiles({"c": [np.array([])]}) == {}


def test_the_reports_figures_equal_rliables_own():
    """A summary's aggregate, P(improvement) and profile: rliable's numbers, seed for seed."""
    rng = np.random.default_rng(0)
    episodes = []
    for planner, p in (("p/strong-v0", 0.8), ("p/weak-v0", 0.3)):
        for env in ("e/a-v0", "e/b-v0"):
            for seed in range(6):
                for episode in range(2):
                    episodes.append(EpisodeResult(
                        cell=f"{env}|{planner}|none|seed={seed}", env=env, planner=planner,
                        llm="none", seed=seed, episode=episode, success=bool(rng.random() < p)))
    summary = summarise(RunData(episodes=episodes))

    def matrix(planner: str) -> np.ndarray:
        return np.array([[np.mean([e.success for e in episodes if e.planner == planner
                                   and e.env == env and e.seed == seed])
                          for env in ("e/a-v0", "e/b-v0")] for seed in range(6)])

    strong, weak = matrix("p/strong-v0"), matrix("p/weak-v0")
    point, interval = _rliable_iqm(strong, reps=BOOTSTRAP_REPS, seed=RANDOM_STATE)
    row = next(r for r in summary["aggregates"] if r["planner"] == "p/strong-v0")
    assert row["iqm_success"] == {"point": point["a"][0], "low": interval["a"][0][0],
                                  "high": interval["a"][1][0]}
    np.random.seed(RANDOM_STATE)
    p, ci = rly.get_interval_estimates({"xy": [strong, weak]},
                                       metrics.probability_of_improvement, reps=POI_REPS)
    [poi] = summary["improvement"]
    assert (poi["p"], poi["low"], poi["high"]) == (p["xy"], ci["xy"][0][0], ci["xy"][1][0])
    np.random.seed(RANDOM_STATE)
    profile, _ = rly.create_performance_profile({"w": weak}, stats.PROFILE_TAUS, reps=POI_REPS)
    assert summary["profiles"]["p/weak-v0"]["fraction"] == profile["w"].tolist()
    assert "rliable" in summary["statistics"]["aggregate"]
