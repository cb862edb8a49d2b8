"""Calibrated scoring on the embedded model: remembered passes give today's scores, cheaper.

A calibrated decision is four scoring passes (state shown or blanked, options forwards or
reversed); the blanked ones are the same at every step of a task and are answered from the
backend's memory. These tests play real steps of the scored `llm-score` planner on the
example env with the real Qwen2.5-Coder-0.5B and compare every pass with one token-tree
pass on a fresh llama.cpp context (no prefix reuse, nothing remembered), and with the tree
as it was before its closing tokens stopped being decoded.

The model is loaded here with llama.cpp's plain CPU kernels (no weight repacking): their
results do not depend on how tokens are batched, so "the same scores" can be checked to
1e-4. With repacked kernels a score moves with the batch layout (up to 0.27 nats measured
between a fresh and a reused context), today's code path included.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from coopbench import envs, planners
from coopbench.llm import local, make
from coopbench.llm.model_files import assemble
from coopbench.llm.token_tree import TokenTreeScorer, _log_softmax, _trie

ENV = "meetgrid/meet-v0"


@pytest.fixture(scope="module")
def plain_llama():
    """A Llama on the packaged model with plain CPU kernels, outside the process cache."""
    from llama_cpp import Llama
    from llama_cpp import llama_cpp as low_level

    original = low_level.llama_model_default_params

    def plain():
        params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = plain
    try:
        llama = Llama(model_path=str(assemble()), n_ctx=4096, n_batch=512, n_threads=2,
                      n_threads_batch=2, verbose=False)
    finally:
        low_level.llama_model_default_params = original
    yield llama
    for scorer in local._SCORERS.pop(id(llama), []):
        scorer.close()
    local._MEMOS.pop(id(llama), None)
    llama.close()


@pytest.fixture
def model(plain_llama, monkeypatch, tmp_path):
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "no-config.yaml"))
    lock = threading.Lock()
    monkeypatch.setattr(local, "load_llama", lambda path, n_ctx=None: (plain_llama, lock))
    local._MEMOS.pop(id(plain_llama), None)  # every test starts with nothing remembered
    return make("local", cache=False)


def recorded(model):
    """Wrap `model.score` to keep (messages, candidates, Scores) of every pass."""
    calls = []
    inner = model.score

    def score(messages, candidates, **kwargs):
        out = inner(messages, candidates, **kwargs)
        calls.append((messages, candidates, out))
        return out

    model.score = score
    return calls


class EveryNodeScorer(TokenTreeScorer):
    """The token tree as it was before issue 23: every node decoded, the childless closing
    tokens included (they cost a third of the tree and feed no score)."""

    def _score_chunk(self, n_prompt, first, candidates):
        for s in range(1, len(candidates)):
            self.ctx.kv_cache_seq_cp(0, s, -1, -1)
        nodes = _trie(candidates)
        rows = _log_softmax(self._decode([(n.token, n_prompt + n.depth, n.leaves,
                                           bool(n.children)) for n in nodes]))
        dists = dict(zip((id(n) for n in nodes if n.children), rows, strict=True))
        out = [0.0] * len(candidates)
        self._accumulate(nodes, first, dists, out)
        return out


def todays_scores(llama, messages, candidates, scorer_class=TokenTreeScorer) -> np.ndarray:
    """One token-tree pass on a fresh context: nothing reused or remembered."""
    prompt_text, end = local._render_prompt(llama, tuple(dict(m) for m in messages))
    prompt = llama.tokenize(prompt_text.encode("utf-8"), add_bos=False, special=True)
    tokens = [[*llama.tokenize(c.encode("utf-8"), add_bos=False, special=False), end]
              for c in candidates]
    scorer = scorer_class(llama)
    try:
        return np.asarray(scorer.score(prompt, tokens))
    finally:
        scorer.close()


def play_steps(model, n_steps: int):
    """`n_steps` steps of the calibrated llm-score planner on the example env."""
    env = envs.make(ENV, max_steps=n_steps + 2)
    env.reset(seed=3)
    planner = planners.make("llm-score-v0", calibration="pmi+reverse")
    planner.reset(env, model, np.random.default_rng(3))
    results = []
    for _ in range(n_steps):
        result = planner.act(env)
        results.append(result)
        env.step(result.joint)
    return results


def test_calibrated_steps_score_as_today_and_reuse_the_blanked_passes(meetgrid, model,
                                                                       plain_llama):
    calls = recorded(model)
    results = play_steps(model, 3)
    assert [r.llm_queries for r in results] == [4, 4, 4]  # a remembered pass still counts
    assert len(calls) == 12
    seen: set[str] = set()
    for messages, candidates, out in calls:  # remembered exactly when asked before
        key = json.dumps([messages, candidates])
        assert out.extra["remembered"] == (key in seen)
        assert (out.extra["decodes"] == 0) == (key in seen)
        seen.add(key)
    # passes in order: shown, blanked, shown reversed, blanked reversed (planners/scoring.py)
    remembered = [i % 4 for i, (_, _, out) in enumerate(calls) if out.extra["remembered"]]
    assert remembered and set(remembered) <= {1, 3}  # blanked passes; the state moves on
    for messages, candidates, out in calls:
        today = todays_scores(plain_llama, messages, candidates)
        assert np.allclose(out.logprobs, today, rtol=0, atol=1e-4), (
            np.abs(np.asarray(out.logprobs) - today).max())


def test_skipping_the_closing_tokens_moves_scores_only_by_llama_cpps_layout_noise(
        meetgrid, model, plain_llama):
    """Not decoding the childless closing tokens changes the batch layout, and llama.cpp's
    numbers move with the layout (reordering the candidates moves them as much: see the
    next test); the choice a planner makes must not move."""
    calls = recorded(model)
    play_steps(model, 2)
    for messages, candidates, out in calls:
        before = todays_scores(plain_llama, messages, candidates, EveryNodeScorer)
        assert np.abs(np.asarray(out.logprobs) - before).max() < 0.15
        assert int(np.argmax(out.logprobs)) == int(np.argmax(before))


def test_a_remembered_pass_needs_the_exact_prompt_and_candidates(model):
    capital = [{"role": "system", "content": "Answer with one word."},
               {"role": "user", "content": "What is the capital of France?"}]
    forwards = model.score(capital, ["Paris", "Lyon", "Nice"])
    backwards = model.score(capital, ["Nice", "Lyon", "Paris"])
    assert not forwards.extra["remembered"] and not backwards.extra["remembered"]
    # another order is another batch layout: llama.cpp's results move by a few hundredths
    assert backwards.logprobs == pytest.approx(forwards.logprobs[::-1], abs=0.1)
    other = model.score(capital[:1] + [{"role": "user", "content": "Capital of Italy?"}],
                        ["Paris", "Lyon", "Nice"])
    assert not other.extra["remembered"] and other.logprobs != forwards.logprobs
    again = model.score(capital, ["Paris", "Lyon", "Nice"])
    assert again.extra["remembered"] and again.logprobs == forwards.logprobs
    assert again.usage.calls == 1 and model.usage.calls == 4  # still a counted pass


def test_remembered_scores_are_bounded(model, monkeypatch):
    monkeypatch.setattr(local, "REMEMBERED_SCORES", 2)
    questions = ["capital of France?", "capital of Spain?", "capital of Peru?"]
    for q in questions:
        model.score([{"role": "user", "content": q}], ["Paris", "Lima"])
    oldest = model.score([{"role": "user", "content": questions[0]}], ["Paris", "Lima"])
    newest = model.score([{"role": "user", "content": questions[2]}], ["Paris", "Lima"])
    assert not oldest.extra["remembered"] and newest.extra["remembered"]
