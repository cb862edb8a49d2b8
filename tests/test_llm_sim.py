"""The simulated LLM and `make()`'s spec handling (no model, no network)."""

from __future__ import annotations

import json

import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.llm import Oracle, make, parse

ORACLE = Oracle(
    "NAME Alice ACTION up", ("NAME Alice ACTION down", "NAME Alice ACTION left")
)
ALL = [ORACLE.expert, *ORACLE.alternatives]


def _msgs(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "rules"}, {"role": "user", "content": f"state {i}"}]


def test_noiseless_sim_answers_the_expert_and_says_it_is_simulated():
    model = make("sim:expert", cache=False)
    assert model.simulated is True
    for i in range(20):
        c = model.complete(_msgs(i), oracle=ORACLE)
        assert c.text == ORACLE.expert
        assert c.usage.calls == 1 and c.usage.tokens_in > 0 and c.usage.tokens_out > 0
        assert c.usage.cost_usd == 0.0 and c.extra["simulated"] is True
    assert model.usage.calls == 20


def test_noise_and_garble_rates_roughly_match_the_spec():
    model = make("sim:expert?noise=0.3&garble=0.2&seed=7", cache=False)
    texts = [model.complete(_msgs(i), oracle=ORACLE).text for i in range(2000)]
    garbled = sum(t not in ALL for t in texts) / len(texts)
    noisy = sum(t in ORACLE.alternatives for t in texts) / len(texts)
    assert 0.16 < garbled < 0.24
    assert 0.26 < noisy < 0.34


def test_answers_depend_on_the_request_not_on_call_order():
    spec = "sim:expert?noise=0.5&garble=0.2&seed=3"
    a, b = make(spec, cache=False), make(spec, cache=False)
    forward = [a.complete(_msgs(i), oracle=ORACLE).text for i in range(50)]
    backward = [b.complete(_msgs(i), oracle=ORACLE).text for i in reversed(range(50))]
    assert forward == backward[::-1]
    # a different seed or sample index changes some answers
    c = make("sim:expert?noise=0.5&garble=0.2&seed=4", cache=False)
    assert forward != [c.complete(_msgs(i), oracle=ORACLE).text for i in range(50)]
    resampled = [a.complete(_msgs(i), oracle=ORACLE, sample=1).text for i in range(50)]
    assert forward != resampled


def test_choices_always_constrain_the_answer():
    model = make("sim:expert?noise=0.3&garble=0.5&seed=1", cache=False)
    choices = ["NAME Alice ACTION up", "NAME Alice ACTION left", "NAME Alice ACTION stay"]
    texts = {model.complete(_msgs(i), oracle=ORACLE, choices=choices).text for i in range(300)}
    assert texts <= set(choices) and len(texts) == 3


def test_random_policy_never_answers_the_expert_when_it_has_alternatives():
    model = make("sim:random?seed=2", cache=False)
    texts = {model.complete(_msgs(i), oracle=ORACLE).text for i in range(100)}
    assert texts == set(ORACLE.alternatives)


def test_sim_without_an_oracle_is_one_clear_error():
    with pytest.raises(CoopbenchError, match="oracle"):
        make("sim:expert", cache=False).complete(_msgs(0))


def test_sim_calls_are_logged_and_marked_simulated(tmp_path):
    log = tmp_path / "llm_calls.jsonl"
    model = make("sim:expert?noise=0.5&seed=1", call_log=log, cache=False)
    for i in range(3):
        model.complete(_msgs(i), oracle=ORACLE, meta={"episode": 0, "step": i, "agent": "Alice"})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 1, 2]
    assert all(r["simulated"] and r["cache_hit"] is False for r in lines)
    assert {r["details"]["sim"] for r in lines} <= {"expert", "noise"}
    assert all(r["request"]["messages"][1]["content"].startswith("state") for r in lines)


@pytest.mark.parametrize(
    "spec, why",
    [
        ("", "empty"),
        ("gpt4", "unknown scheme"),
        ("claude:opus", "unknown scheme"),
        ("sim:oracle", "unknown sim policy"),
        ("sim:expert?noise=1.5", "noise must lie"),
        ("sim:expert?garble=-0.1", "garble must lie"),
        ("sim:expert?noise=abc", "not a number"),
        ("sim:expert?temperature=1", "unknown sim parameter"),
        ("sim:expert?seed=1.5", "not a number"),
        ("sim:expert?rationality=0", "rationality must be a positive"),
        ("sim:expert?rationality=inf", "rationality must be a positive"),
        ("local:", "needs a path"),
        ("openai:", "needs a model"),
        ("openai-compat:http://127.0.0.1:1/v1", "base_url>#<model"),
        ("openai-compat:localhost#m", "not an http"),
        ("openai-compat:http://user:pw@host/v1#m", "not in the URL"),
    ],
)
def test_malformed_specs_fail_with_one_line(spec, why):
    with pytest.raises(CoopbenchError, match=why) as info:
        make(spec, cache=False)
    assert "\n" not in str(info.value)


def test_spec_canonical_forms():
    assert parse("sim:expert?seed=3&noise=0.1").canonical() == (
        "sim:expert?garble=0.0&noise=0.1&seed=3"
    )
    assert parse("openai-compat:http://h:1/v1/#m").canonical() == "openai-compat:http://h:1/v1#m"
    assert parse("local").canonical() == "local"
    assert parse("sim:expert?rationality=2").canonical() == (
        "sim:expert?garble=0.0&noise=0.0&rationality=2.0&seed=0"
    )


def test_a_rational_sim_errs_on_close_calls_and_rarely_on_clear_ones():
    """With rationality b, P(wrong) = 1 − σ(b·margin); questions without a margin keep noise."""
    model = make("sim:expert?noise=0.1&rationality=2&seed=5", cache=False)

    def wrong_rate(margin: float | None) -> float:
        oracle = Oracle("A", ("B", "SAME"), margin)
        texts = [model.complete(_msgs(i), oracle=oracle, choices=["A", "B", "SAME"]).text
                 for i in range(2000)]
        return sum(t != "A" for t in texts) / len(texts)

    assert 0.44 < wrong_rate(0.0) < 0.56  # a coin flip
    assert 0.22 < wrong_rate(0.5) < 0.32  # 1 − σ(1) = 0.27
    assert wrong_rate(3.0) < 0.01  # 1 − σ(6) = 0.0025
    assert 0.07 < wrong_rate(None) < 0.13  # no margin: noise


def test_call_context_labels_every_logged_call(tmp_path):
    from coopbench.llm import call_context

    log = tmp_path / "llm_calls.jsonl"
    model = make("sim:expert", call_log=log, cache=False)
    with call_context(cell="meet|walker|sim|seed=0", episode=2):
        model.complete(_msgs(0), oracle=ORACLE, meta={"step": 5})
        with call_context(attempt=1):
            model.complete(_msgs(1), oracle=ORACLE)
    model.complete(_msgs(2), oracle=ORACLE)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r.get("episode") for r in records] == [2, 2, None]
    assert records[0]["cell"] == "meet|walker|sim|seed=0" and records[0]["step"] == 5
    assert records[1]["attempt"] == 1 and "cell" not in records[2]
