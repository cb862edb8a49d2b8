"""Preference collection and Bradley-Terry potentials: noise flattens, consistency orders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coopbench import llm
from coopbench.core.errors import CoopbenchError
from coopbench.credit import potential, preferences
from coopbench.credit.preferences import CollectConfig, expert_answer

torch.set_num_threads(1)
FIT = potential.FitConfig(steps=600, lr=1e-2, seed=0)


def _collect(spec: str, out, pairs: int = 240, repeats: int = 5):
    model = llm.make(spec, call_log=out / preferences.CALLS, cache=False)
    config = CollectConfig("meetgrid/meet-v0", pairs=pairs, repeats=repeats, seed=0)
    return preferences.collect(config, model, out), model


def test_expert_answer_orders_and_ties():
    assert expert_answer(2.0, 1.0, 1e-6) == "A"
    assert expert_answer(1.0, 2.0, 1e-6) == "B"
    assert expert_answer(1.0, 1.0 + 1e-9, 1e-6) == "SAME"


def test_collect_counts_queries_and_confidence(meetgrid, tmp_path):
    meta, model = _collect("sim:expert?seed=0", tmp_path, pairs=40, repeats=3)
    arrays, saved = preferences.load(tmp_path)
    assert saved == meta
    assert meta["pairs"] == 40 and meta["queries"] == 40 * 2 * 3
    assert model.usage.calls == meta["queries"]
    calls = (tmp_path / preferences.CALLS).read_text().splitlines()
    assert len(calls) == meta["queries"]
    assert arrays["obs"].shape == (40, 2, 4) and arrays["conf"].shape == (40, 2)
    # A noiseless judge: c(s' > s) is 1, 0 or 1/2 exactly as the progress measure says.
    diff = arrays["next_progress"] - arrays["progress"]
    expected = np.where(np.abs(diff) < 1e-6, 0.5, (diff > 0).astype(float))
    np.testing.assert_allclose(arrays["conf"], expected)
    assert meta["mean_correct_answers"] == 1.0 and meta["mean_agreement"] == 1.0
    assert meta["mean_correct_answers_same"] == 1.0 == meta["mean_correct_answers_decided"]


def test_a_later_state_stays_within_its_episode():
    pool = [preferences.Transition(None, None, None, None, {}, episode=e) for e in (1, 1, 1, 2, 2)]
    assert [preferences.later(pool, 0, g) for g in (1, 2, 3, 9)] == [0, 1, 2, 2]
    assert preferences.later(pool, 3, 2) == 4 and preferences.later(pool, 4, 3) == 4


def test_gaps_pair_states_further_apart(meetgrid, tmp_path):
    spans, told = {}, {}
    for gaps in ((1,), (6,)):
        out = tmp_path / str(gaps[0])
        model = llm.make("sim:expert?seed=0", call_log=out / preferences.CALLS, cache=False)
        config = CollectConfig("meetgrid/meet-v0", pairs=80, repeats=1, seed=0, gaps=gaps)
        meta = preferences.collect(config, model, out)
        arrays, _ = preferences.load(out)
        assert meta["config"]["gaps"] == list(gaps)
        spans[gaps[0]] = np.abs(arrays["next_progress"] - arrays["progress"]).mean()
        calls = (out / preferences.CALLS).read_text()
        told[gaps[0]] = calls.count("6 steps passed")
    assert spans[6] > spans[1]
    assert told[1] == 0 and told[6] > 40  # pairs 6 steps apart (fewer near episode ends)
    with pytest.raises(CoopbenchError, match="--gaps"):
        preferences.collect(CollectConfig("meetgrid/meet-v0", gaps=(0,)), model, tmp_path / "x")


def test_a_rational_judge_is_surer_of_bigger_progress(meetgrid, tmp_path):
    """The query carries its progress difference, so `rationality` errs on close calls."""
    model = llm.make("sim:expert?rationality=1&seed=0", cache=False)
    config = CollectConfig("meetgrid/meet-v0", pairs=300, repeats=5, seed=0, gaps=(1, 3, 6))
    preferences.collect(config, model, tmp_path)
    arrays, _ = preferences.load(tmp_path)
    size = np.abs(arrays["next_progress"] - arrays["progress"]).ravel()
    sureness = np.abs(arrays["conf"] - 0.5).ravel()
    small, big = (size > 1e-6) & (size <= 1.0), size >= 2.0
    assert small.sum() > 20 and big.sum() > 20
    assert sureness[big].mean() > sureness[small].mean() + 0.1
    meta = preferences.load(tmp_path)[1]
    assert meta["mean_correct_answers_same"] == 1.0  # no margin: noise 0
    assert meta["mean_correct_answers_decided"] < 0.95


def test_random_rankings_give_a_flat_potential_consistent_ones_order_states(meetgrid, tmp_path):
    _collect("sim:expert?noise=0.1&seed=1", tmp_path / "good")
    _collect("sim:expert?garble=1.0&seed=1", tmp_path / "random")  # uniform A/B/SAME answers
    good, _ = preferences.load(tmp_path / "good")
    noise, _ = preferences.load(tmp_path / "random")
    assert 0.4 < noise["conf"].mean() < 0.6
    net_good, report_good = potential.fit(good, FIT)
    net_noise, report_noise = potential.fit(noise, FIT)
    # Consistent rankings: Φ orders states by task progress (rank correlation, every agent).
    assert min(potential.evaluate(net_good, good)["spearman_with_progress"]) > 0.7
    assert min(report_good["spearman_with_progress"]) > 0.6  # held-out pairs only
    # Random rankings: the potential stays (near) constant across the same states.
    on_good_states = potential.evaluate(net_noise, good)
    spread_good = min(report_good["phi_std"])
    assert max(on_good_states["phi_std"]) < 0.05 * spread_good
    assert max(report_noise["phi_range"]) < 0.1


def test_checkpoint_round_trip_and_compatibility(meetgrid, tmp_path):
    _collect("sim:expert?seed=2", tmp_path / "prefs", pairs=60, repeats=1)
    arrays, meta = preferences.load(tmp_path / "prefs")
    net, _ = potential.fit(arrays, potential.FitConfig(steps=50, shared=True))
    potential.save(net, tmp_path / "pot", {"env_id": meta["env_id"], "agents": meta["agents"],
                                           "features_version": meta["features_version"]})
    loaded, saved = potential.load(tmp_path / "pot")
    obs = torch.as_tensor(arrays["obs"])
    torch.testing.assert_close(loaded(obs), net(obs).detach())
    assert saved["env_id"] == "meetgrid/meet-v0" and saved["shared"] is True
    potential.check_compatible(saved, "meetgrid/meet-v0", "1", ["Alice", "Bob"], 4)
    with pytest.raises(CoopbenchError, match="features version"):
        potential.check_compatible(saved, "meetgrid/meet-v0", "2", ["Alice", "Bob"], 4)
    with pytest.raises(CoopbenchError, match="fitted on meetgrid"):
        potential.check_compatible(saved, "overcooked/cramped_room-v0", "1", ["Alice", "Bob"], 4)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(CoopbenchError, match="no preferences"):
        preferences.load(tmp_path)
    with pytest.raises(CoopbenchError, match="no potential checkpoint"):
        potential.load(tmp_path)
    (tmp_path / potential.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(CoopbenchError, match="cannot read coopbench potential checkpoint"):
        potential.load(tmp_path)
    with pytest.raises(CoopbenchError, match="at least 1"):
        preferences.collect(CollectConfig("meetgrid/meet-v0", pairs=0),
                            llm.make("sim:expert", cache=False), tmp_path)


def _cyclic_pairs(rng: np.random.Generator, n: int = 1500) -> dict[str, np.ndarray]:
    """A task that cycles (five phases, then the count of finished cycles rises by one).

    The phase is one-hot; the count moves its input by only 0.01 per cycle, the way
    Overcooked's delivered-soup count moves by 1/20. Every step of the cycle is progress.
    """
    count = rng.integers(0, 8, n)
    phase = rng.integers(0, 5, n)
    wrap = phase == 4
    next_count, next_phase = count + wrap, np.where(wrap, 0, phase + 1)

    def encode(c: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.concatenate([np.eye(5)[k], 0.01 * c[:, None]], axis=1)[:, None, :]

    return {"obs": encode(count, phase).astype(np.float32),
            "next_obs": encode(next_count, next_phase).astype(np.float32),
            "conf": np.full((n, 1), 0.9),
            "progress": (5.0 * count + phase)[:, None],
            "next_progress": (5.0 * next_count + next_phase)[:, None]}


def test_standardised_inputs_keep_progress_rising_across_cycles():
    arrays = _cyclic_pairs(np.random.default_rng(0))
    net, _ = potential.fit(arrays, FIT)  # unscaled inputs: about 60 % of the steps rise
    with torch.no_grad():
        delta = (net(torch.as_tensor(arrays["next_obs"]))
                 - net(torch.as_tensor(arrays["obs"]))).numpy()[:, 0]
    assert (delta > 0).mean() > 0.95  # no step of the cycle pays for the others
    assert potential.evaluate(net, arrays)["spearman_with_progress"][0] > 0.95
