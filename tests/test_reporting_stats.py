"""Statistics against hand-computed values and brute-force definitions."""

import itertools
import math

import numpy as np
import pytest

from coopbench.reporting import stats


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


def test_stratified_bootstrap_is_reproducible_and_resamples_within_tasks():
    rng = np.random.default_rng(3)
    tasks = [rng.random(10), rng.random(10) + 1]
    a = stats.stratified_bootstrap(tasks, reps=500, random_state=7)
    b = stats.stratified_bootstrap(tasks, reps=500, random_state=7)
    assert a == b
    point, low, high = a
    assert low <= point <= high and point == pytest.approx(stats.iqm(np.concatenate(tasks)))
    # a task where every seed agrees contributes no variance: constant tasks -> zero width
    assert stats.stratified_bootstrap([np.ones(5), np.zeros(5)], reps=200)[1:] == (0.5, 0.5)


def brute_poi(x, y):
    pairs = list(itertools.product(x, y))
    return sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)


def test_probability_of_improvement_is_mann_whitney_over_pairs():
    x = [np.array([1, 1, 0, 1.0]), np.array([0.5, 0.2, 0.9])]
    y = [np.array([0, 1, 0, 0.0]), np.array([0.4, 0.4, 0.1])]
    point, low, high = stats.probability_of_improvement(x, y, reps=300, random_state=1)
    expected = (brute_poi(x[0], y[0]) + brute_poi(x[1], y[1])) / 2
    assert point == pytest.approx(expected) and low <= point <= high
    same = stats.probability_of_improvement([np.ones(4)], [np.ones(4)], reps=50)
    assert same == (0.5, 0.5, 0.5)
    assert stats.probability_of_improvement([np.ones(3)], [np.zeros(3)], reps=50)[0] == 1.0
