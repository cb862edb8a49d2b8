"""The scored planners (ReAd's π* ∝ μ·exp(A/β) over listed actions) on the example plug-in env."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench import llm as llm_layer
from coopbench import planners
from coopbench.core.errors import BadScores, ConfigError
from coopbench.llm.client import Model
from coopbench.llm.request import ScoreReply
from coopbench.runner.single import EpisodeTask, run_task

ENV = "meetgrid/meet-v0"
SCORED = ["read-j-scored-v0", "read-s-scored-v0", "llm-score-v0"]


def sim(noise=0.0):
    return llm_layer.make(f"sim:expert?noise={noise}", cache=False)


def play(planner_id, model, critic=None, steps=None, seed=0, **kwargs):
    if critic is not None:
        kwargs["critic"] = str(critic)
    task = EpisodeTask(ENV, planner_id, "sim", seed, planner_kwargs=kwargs)  # as the runner
    return run_task(task, llm=model, on_step=steps.append if steps is not None else None)


@pytest.mark.parametrize("planner_id", SCORED)
def test_a_perfect_scorer_solves_the_task(meetgrid, critic_path, planner_id):
    critic = None if planner_id == "llm-score-v0" else critic_path
    result = play(planner_id, sim(), critic=critic, beta=100.0)  # the LLM term decides
    assert result.success and result.error is None and result.parse_failures == 0


def test_critic_greedy_needs_no_llm_and_follows_the_critic(meetgrid, critic_path):
    result = play("critic-greedy-v0", None, critic=critic_path)
    assert result.error is None and result.llm_queries == 0 and result.tokens_in == 0
    assert planners.registry.spec("critic-greedy-v0").caps.needs_llm is False


def test_each_calibration_pass_is_one_query_round(meetgrid, critic_path):
    for calibration, passes in (("pmi+reverse", 4), ("pmi", 2), ("reverse", 2), ("none", 1)):
        steps = []
        play("read-j-scored-v0", sim(), critic=critic_path, steps=steps, calibration=calibration)
        first = steps[0]
        queries = [e for e in first.transcript if e["type"] == "query"]
        assert first.llm_queries == passes == len(queries)
        purposes = {q["purpose"] for q in queries}
        assert ("score-blank" in purposes) == ("pmi" in calibration)
        assert ("score-reversed" in purposes) == ("reverse" in calibration)
        scored = next(e for e in first.transcript if e["type"] == "scored")["candidates"]
        totals = [c["total"] for c in scored]
        assert totals == sorted(totals, reverse=True)  # tried best first


def test_beta_moves_the_choice_between_the_critic_and_the_llm(meetgrid, critic_path):
    """β → 0 is critic-greedy; β → ∞ ranks by the LLM's log μ alone."""
    def first_step(planner_id, **kw):
        steps = []
        play(planner_id, sim(noise=0.5), critic=critic_path, steps=steps, seed=3, **kw)
        return steps[0]

    greedy = first_step("critic-greedy-v0").joint
    assert first_step("read-j-scored-v0", beta=1e-6, calibration="none").joint == greedy
    llm_only = first_step("read-j-scored-v0", beta=1e6, calibration="none")
    ranked = next(e for e in llm_only.transcript if e["type"] == "scored")["candidates"]
    assert ranked[0]["log_mu"] == max(c["log_mu"] for c in ranked)
    assert ranked[0]["log_mu"] > min(c["log_mu"] for c in ranked)  # the LLM did discriminate


class _GarbageBackend:
    model_id, simulated, cacheable = "garbage", False, False

    def generate(self, request):  # pragma: no cover - scoring only
        raise AssertionError

    def score(self, request):
        return ScoreReply(logprobs=[float("nan")] * len(request.candidates), tokens_in=1)


def test_garbage_scores_are_a_counted_failure_and_the_critic_decides(meetgrid, critic_path):
    model = Model(_GarbageBackend(), spec="garbage", price_name="garbage")
    with pytest.raises(BadScores, match="not log-probabilities"):
        model.score([{"role": "user", "content": "x"}], ["a", "b"])
    steps = []
    result = play("read-j-scored-v0", model, critic=critic_path, steps=steps,
                  calibration="none")
    assert result.error is None and steps[0].parse_failures == 1
    assert any(e.get("kind") == "score" for e in steps[0].transcript)
    greedy = []
    play("critic-greedy-v0", None, critic=critic_path, steps=greedy)
    assert steps[0].joint == greedy[0].joint  # without the LLM term: the critic's choice


def test_the_query_cap_leaves_the_critic_to_decide(meetgrid, critic_path):
    steps = []
    result = play("read-j-scored-v0", sim(), critic=critic_path, steps=steps,
                  max_queries_per_step=1)
    assert result.error is None and all(s.llm_queries <= 1 for s in steps)
    assert any(e["type"] == "cap" for e in steps[0].transcript)


def test_bad_scored_options_are_one_line_errors(meetgrid):
    with pytest.raises(ConfigError, match="beta"):
        planners.make("read-j-scored-v0", beta=0)
    with pytest.raises(ConfigError, match="calibration"):
        planners.make("read-s-scored-v0", calibration="sometimes")


def test_sim_scores_put_the_answer_it_would_give_first():
    model = sim(noise=0.0)
    oracle = llm_layer.Oracle("B", ("A", "C"))
    s = model.score([{"role": "user", "content": "q"}], ["A", "B", "C"], oracle=oracle)
    assert s.best() == 1 and s.logprobs[0] == s.logprobs[2] < s.logprobs[1]
    assert np.isclose(np.exp(s.logprobs).sum(), 1.0)
    missing = model.score([{"role": "user", "content": "q"}], ["A", "C"], oracle=oracle)
    assert missing.logprobs[0] == missing.logprobs[1]  # nothing it knows is on offer
