"""`Model.score` through an OpenAI-compatible endpoint (a fake server on 127.0.0.1).

The logprobs path (legacy completions, echo), counted samples where the endpoint has none,
garbage answers, the cache and auth errors. The scoring form is set in the config here
(`scoring:`); how a probe finds it is tests/test_llm_capabilities.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fake_openai import KEY, NEW_LOGPROB, SEEN_LOGPROB, FakeServer, fake_logprobs, isolate

from coopbench.core.errors import CoopbenchError
from coopbench.llm import make
from coopbench.llm.config import LLMConfig, load

MESSAGES = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "please go to the door"}]
CANDIDATES = ["jump over the fence", "go to the door", "wait"]
BEST = 1  # every token of it was seen in the prompt, which the fake model favours
CHATML_PREFIX = ("<|im_start|>system\nbe brief<|im_end|>\n"
                 "<|im_start|>user\nplease go to the door<|im_end|>\n<|im_start|>assistant\n")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    isolate(tmp_path, monkeypatch)


def _model(server: FakeServer, tmp_path: Path, cache: bool = False, **endpoint):
    endpoint = {"constrain": "grammar", "scoring": "batched", **endpoint}
    config = LLMConfig(timeout_s=0.5, max_attempts=4, backoff_s=0.01, backoff_max_s=0.05,
                       endpoints={server.base_url: endpoint})
    return make(f"openai-compat:{server.base_url}#m", call_log=tmp_path / "calls.jsonl",
                cache=tmp_path / "c.sqlite" if cache else False, config=config)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _expected(prefix: str, candidate: str, end: str) -> float:
    text = prefix + candidate + end
    return sum(lp for _, offset, lp in fake_logprobs(text) if len(prefix) <= offset < len(text))


def test_logprobs_path_scores_each_candidate_in_order(server, tmp_path):
    scores = _model(server, tmp_path).score(MESSAGES, CANDIDATES)
    assert scores.method == "logprobs" and scores.usage.calls == 1 and not scores.cached
    expected = [_expected(CHATML_PREFIX, c, "<|im_end|>") for c in CANDIDATES]
    assert scores.logprobs == pytest.approx(expected)
    assert scores.best() == BEST
    # "go to the door<|im_end|>": 7 tokens and the end marker, all seen before
    assert scores.logprobs[BEST] == pytest.approx(8 * SEEN_LOGPROB)
    assert scores.logprobs[2] == pytest.approx(NEW_LOGPROB + SEEN_LOGPROB)  # "wait", end
    (sent,) = server.completion_requests
    assert server.chat_requests == []
    body = sent["body"]
    assert body["echo"] is True and body["logprobs"] >= 0 and body["max_tokens"] == 1
    assert body["temperature"] == 0 and body["model"] == "m"
    assert body["prompt"] == [CHATML_PREFIX + c + "<|im_end|>" for c in CANDIDATES]
    assert scores.usage.tokens_in == sum(len(fake_logprobs(p)) for p in body["prompt"])
    (record,) = _lines(tmp_path / "calls.jsonl")
    assert record["request"]["kind"] == "score" and record["error"] is None
    assert record["response"]["method"] == "logprobs"


def test_plain_template_is_an_endpoint_setting(server, tmp_path):
    scores = _model(server, tmp_path, score_template="plain").score(MESSAGES, CANDIDATES)
    prompts = server.completion_requests[0]["body"]["prompt"]
    prefix = "System: be brief\nUser: please go to the door\nAssistant: "
    assert prompts == [prefix + c + "\n" for c in CANDIDATES]
    assert scores.logprobs == pytest.approx([_expected(prefix, c, "\n") for c in CANDIDATES])
    assert scores.best() == BEST


@pytest.mark.parametrize("setting", [{"score_template": "jinja"}, {"score_samples": 0},
                                     {"score_samples": "8"}])
def test_bad_score_settings_are_one_line(server, tmp_path, setting):
    with pytest.raises(CoopbenchError, match=next(iter(setting))):
        _model(server, tmp_path, **setting)


def test_score_settings_load_from_the_config_file(server, tmp_path):
    path = tmp_path / "llm.yaml"
    path.write_text(f'endpoints:\n  "{server.base_url}":\n'
                    "    score_template: plain\n    score_samples: 3\n")
    assert load(path).endpoint(server.base_url) == {"score_template": "plain",
                                                    "score_samples": 3}


@pytest.mark.parametrize("refusal", ["404", "http:400", "http:405", "http:422", "nologprobs"])
def test_a_refusal_mid_run_is_one_line_not_a_silent_fallback(server, tmp_path, refusal):
    model = _model(server, tmp_path)  # capabilities say: batched
    server.script.append(refusal)
    with pytest.raises(CoopbenchError) as info:
        model.score(MESSAGES, CANDIDATES)
    assert "\n" not in str(info.value)
    assert len(server.completion_requests) == 1 and server.chat_requests == []  # no retry


def test_sampled_scoring_counts_constrained_samples(server, tmp_path):
    k, n = 4, len(CANDIDATES)
    model = _model(server, tmp_path, score_samples=k, scoring="sampled")
    scores = model.score(MESSAGES, CANDIDATES, seed=7)
    assert scores.method == "sampled" and scores.usage.calls == k
    assert server.completion_requests == []  # decided up front: never asked
    asks = [r["body"] for r in server.chat_requests]
    assert len(asks) == k and all(a["temperature"] == 1.0 and "grammar" in a for a in asks)
    assert len({a["seed"] for a in asks}) == k  # one sample index each
    # the fake answers the grammar's first choice every time: all k votes go to it
    assert scores.logprobs == pytest.approx(
        [math.log((k + 0.5) / (k + 0.5 * n))] + [math.log(0.5 / (k + 0.5 * n))] * (n - 1))
    assert scores.usage.tokens_in == 11 * k and scores.usage.tokens_out == 7 * k
    model.score(MESSAGES, ["wait", "run"])
    assert server.completion_requests == []
    assert len(server.chat_requests) == 2 * k
    assert model.usage.calls == 2 * k
    records = _lines(tmp_path / "calls.jsonl")
    assert [r["response"]["method"] for r in records] == ["sampled", "sampled"]
    assert records[0]["details"]["no_logprobs"]  # why it sampled, in the call log


def test_sampled_replies_that_match_no_candidate_count_for_nothing(server, tmp_path):
    k, n = 3, len(CANDIDATES)
    model = _model(server, tmp_path, score_samples=k, constrain="none",  # free text replies
                   scoring="sampled")
    scores = model.score(MESSAGES, CANDIDATES)
    assert scores.logprobs == pytest.approx([math.log(0.5 / (k + 0.5 * n))] * n)
    assert scores.extra["unmatched"] == k


@pytest.mark.parametrize("garbage", ["wrongcount", "nonnumeric"])
def test_garbage_scores_are_a_counted_failure(server, tmp_path, garbage):
    model = _model(server, tmp_path)
    server.script.append(garbage)
    with pytest.raises(CoopbenchError, match="unusable scores") as info:
        model.score(MESSAGES, CANDIDATES)
    assert "\n" not in str(info.value)
    (record,) = _lines(tmp_path / "calls.jsonl")
    assert "unusable scores" in record["error"] and record["response"] is None
    assert model.usage.calls == 0 and server.chat_requests == []
    assert model.score(MESSAGES, CANDIDATES).method == "logprobs"  # not taken for "no logprobs"


def test_transient_errors_on_completions_are_retried(server, tmp_path):
    model = _model(server, tmp_path)
    server.script.extend(["500", "429:0", "malformed"])
    scores = model.score(MESSAGES, CANDIDATES)
    assert scores.method == "logprobs" and scores.best() == BEST
    assert len(server.completion_requests) == 4 and model.retries == 3
    (record,) = _lines(tmp_path / "calls.jsonl")
    assert [r["error"] for r in record["retries"]][:2] == ["HTTP 500", "HTTP 429"]


@pytest.mark.parametrize("scoring", ["batched", "sampled"])
def test_a_repeated_score_is_answered_from_the_cache(server, tmp_path, scoring):
    k = 2
    first = _model(server, tmp_path, cache=True, score_samples=k, scoring=scoring).score(
        MESSAGES, CANDIDATES)
    sent = len(server.requests)
    again = _model(server, tmp_path, cache=True, score_samples=k, scoring=scoring)
    replay = again.score(MESSAGES, CANDIDATES)
    assert len(server.requests) == sent  # zero backend requests
    assert replay.cached and replay.logprobs == first.logprobs and replay.method == first.method
    assert replay.usage.cache_hits == 1 and replay.usage.calls == first.usage.calls
    assert again.backend_calls == 0 and _lines(tmp_path / "calls.jsonl")[-1]["cache_hit"]


def test_401_on_completions_fails_fast_without_fallback(server, tmp_path):
    model = _model(server, tmp_path, cache=True)
    server.script.append("401")
    with pytest.raises(CoopbenchError) as info:
        model.score(MESSAGES, CANDIDATES)
    message = str(info.value)
    assert "authentication failed (HTTP 401)" in message and "\n" not in message
    assert KEY not in message
    assert len(server.completion_requests) == 1 and server.chat_requests == []
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)  # it was sent
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert b"Zq9SECRET" not in path.read_bytes(), path
