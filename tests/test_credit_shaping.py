"""Potential-based shaping and the per-agent shaped returns offered to ReAd's critics."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench.credit import shaped_returns, shaping_term


def _returns(rewards, gamma):
    out, running = [], 0.0
    for r in reversed(rewards):
        running = r + gamma * running
        out.append(running)
    return out[::-1]


def test_shaping_term_zeroes_the_terminal_potential_only():
    phi = np.array([[1.0, 2.0], [3.0, 4.0]])
    nxt = np.array([[2.0, 2.0], [5.0, 6.0]])
    out = shaping_term(phi, nxt, 0.5, terminated=np.array([False, True]))
    np.testing.assert_allclose(out, [[0.0, -1.0], [-3.0, -4.0]])


def test_shaped_returns_telescope_per_agent():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=7)
    phi = rng.normal(size=(8, 2))
    gamma, scale = 0.9, 2.0
    got = shaped_returns(rewards, phi, gamma, scale=scale, terminated=False)
    plain = np.array(_returns(rewards, gamma))
    t = np.arange(7)
    # G'_i(t) = G(t) + scale·(γ^{T-t} Φ_i(s_T) − Φ_i(s_t))  (telescoping sum)
    expected = plain[:, None] + scale * (gamma ** (7 - t)[:, None] * phi[-1] - phi[:-1])
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    ended = shaped_returns(rewards, phi, gamma, scale=scale, terminated=True)
    np.testing.assert_allclose(ended, plain[:, None] - scale * phi[:-1], rtol=1e-10)
    assert not np.allclose(got[:, 0], got[:, 1])  # each agent gets its own credit


def test_constant_potential_changes_nothing_undiscounted():
    rewards = [0.0, 0.0, 1.0]
    got = shaped_returns(rewards, np.full((4, 2), 5.0), gamma=1.0, terminated=False)
    np.testing.assert_allclose(got, np.array([[1.0, 1.0]] * 3))


def test_shaped_returns_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="T\\+1 potentials"):
        shaped_returns([1.0, 2.0], np.zeros((2, 2)), 0.9)
