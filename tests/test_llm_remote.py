"""OpenAI-compatible transport against a real HTTP server on 127.0.0.1 that misbehaves.

The server is a threaded `http.server` started by the fixture; each test scripts what the
next requests get (500, 429 + Retry-After, hang past the timeout, malformed JSON, a dropped
connection, 401, 404). Backoffs are shortened by config; no wall-clock assertions.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fake_openai import KEY, FakeServer, isolate

from coopbench.core.errors import CoopbenchError, CoopbenchWarning
from coopbench.llm import make
from coopbench.llm.config import LLMConfig
from coopbench.runner.store import RunStore


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    isolate(tmp_path, monkeypatch)


def _config(**overrides) -> LLMConfig:
    values = dict(timeout_s=0.5, max_attempts=6, backoff_s=0.01, backoff_max_s=0.05,
                  concurrency=4)
    values.update(overrides)
    return LLMConfig(**values)


def _msgs(text: str = "hello") -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_transient_failures_are_retried_counted_and_logged(server, tmp_path):
    log = tmp_path / "llm_calls.jsonl"
    model = make(f"openai-compat:{server.base_url}#m1", call_log=log, cache=False,
                 config=_config())
    server.script.extend(["500", "429:1", "hang:2", "malformed", "drop", "ok"])
    c = model.complete(_msgs("go"), meta={"episode": 3, "step": 1, "agent": "Alice"})
    assert c.text == "m1 says: go"
    assert c.attempts == 6 and c.model == "m1-0613"
    assert (c.usage.tokens_in, c.usage.tokens_out) == (11, 7)
    errors = [r["error"] for r in c.extra["retries"]]
    assert errors == ["HTTP 500", "HTTP 429", "timeout after 0.5 s",
                      "malformed response body (JSONDecodeError)", "connection error"]
    retry_429 = c.extra["retries"][1]
    assert retry_429["retry_after"] is True and retry_429["wait_s"] == 1.0  # honoured
    assert len(server.chat_requests) == 6
    (record,) = _lines(log)
    assert record["attempts"] == 6 and len(record["retries"]) == 5 and model.retries == 5
    assert record["episode"] == 3 and record["agent"] == "Alice" and record["error"] is None
    assert record["response"] == "m1 says: go"


def test_many_calls_through_a_flaky_server_all_complete(server, tmp_path):
    log = tmp_path / "llm_calls.jsonl"
    model = make(f"openai-compat:{server.base_url}#m1", call_log=log, cache=False,
                 config=_config())
    server.script.extend(["500", "ok", "malformed", "ok", "500", "500", "ok", "drop"] * 3)
    texts = [model.complete(_msgs(f"q{i}")).text for i in range(20)]
    assert texts == [f"m1 says: q{i}" for i in range(20)]  # nothing lost, nothing mixed up
    records = _lines(log)
    assert len(records) == 20 and all(r["error"] is None for r in records)
    assert sum(len(r["retries"]) for r in records) == 15
    assert model.usage.calls == 20


def test_giving_up_after_max_attempts_is_one_line_and_logged(server, tmp_path):
    log = tmp_path / "llm_calls.jsonl"
    model = make(f"openai-compat:{server.base_url}#m1", call_log=log, cache=False,
                 config=_config(max_attempts=3))
    server.script.extend(["500"] * 5)
    with pytest.raises(CoopbenchError, match=r"gave up after 3 attempt\(s\), last error: HTTP 500"):
        model.complete(_msgs())
    assert len(server.chat_requests) == 3
    (record,) = _lines(log)
    assert record["attempts"] == 3 and len(record["retries"]) == 2 and "gave up" in record["error"]


def test_401_fails_fast_with_one_clear_line(server, tmp_path):
    model = make(f"openai-compat:{server.base_url}#m1", call_log=tmp_path / "calls.jsonl",
                 cache=False, config=_config())
    server.script.append("401")
    with pytest.raises(CoopbenchError) as info:
        model.complete(_msgs())
    message = str(info.value)
    assert "authentication failed (HTTP 401)" in message and "\n" not in message
    assert KEY not in message
    assert len(server.chat_requests) == 1  # no retry


def test_unknown_model_and_bad_request_are_not_retried(server):
    model = make(f"openai-compat:{server.base_url}#nope", cache=False, config=_config())
    server.script.extend(["404", "400"])
    with pytest.raises(CoopbenchError, match="unknown model 'nope'"):
        model.complete(_msgs())
    with pytest.raises(CoopbenchError, match="HTTP 400.*max_tokens is too large"):
        model.complete(_msgs())
    assert len(server.chat_requests) == 2


def test_unreachable_server_is_one_line_after_retries():
    model = make("openai-compat:http://127.0.0.1:9/v1#m1", cache=False,
                 config=_config(max_attempts=2))
    with pytest.raises(CoopbenchError, match="gave up after 2 attempt.*connection error"):
        model.complete(_msgs())


def test_concurrency_limit_is_shared_across_threads_and_models(server):
    server.default_hold_s = 0.2
    spec = f"openai-compat:{server.base_url}#m1"
    models = [make(spec, cache=False, config=_config(concurrency=2)) for _ in range(2)]
    results: list[str] = []

    def work(i: int) -> None:
        results.append(models[i % 2].complete(_msgs(f"t{i}")).text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"m1 says: t{i}" for i in range(6))
    assert server.max_in_flight == 2


def _known(server) -> LLMConfig:
    """Capabilities set in the config: these tests count run requests, not probes."""
    return _config(endpoints={server.base_url: {"constrain": "grammar", "scoring": "batched"}})


def test_cache_rerun_makes_zero_backend_calls(server, tmp_path):
    db = tmp_path / "cache.sqlite3"
    spec = f"openai-compat:{server.base_url}#m1"
    first = make(spec, cache=db, config=_known(server))
    answers = [first.complete(_msgs(f"q{i}"), temperature=0.7, sample=i % 2).text
               for i in range(4)]
    assert len(server.chat_requests) == 4
    log = tmp_path / "rerun.jsonl"
    again = make(spec, cache=db, call_log=log, config=_known(server))
    replay = [again.complete(_msgs(f"q{i}"), temperature=0.7, sample=i % 2) for i in range(4)]
    assert len(server.chat_requests) == 4  # zero new backend calls
    assert [c.text for c in replay] == answers
    assert all(c.cached and c.usage.calls == 1 and c.usage.cache_hits == 1 for c in replay)
    assert again.usage.calls == 4 and again.usage.cache_hits == 4 and again.backend_calls == 0
    assert all(r["cache_hit"] for r in _lines(log))
    # a different sample index, temperature or constraint is a different entry
    again.complete(_msgs("q0"), temperature=0.7, sample=5)
    again.complete(_msgs("q0"), temperature=0.0)
    again.complete(_msgs("q0"), choices=["a", "b"])
    assert len(server.chat_requests) == 7


def test_two_specs_never_share_a_cache_entry(server, tmp_path):
    other = FakeServer()
    try:
        db = tmp_path / "cache.sqlite3"
        specs = [f"openai-compat:{server.base_url}#m1", f"openai-compat:{server.base_url}#m2",
                 f"openai-compat:{other.base_url}#m1"]
        models = [make(s, cache=db, config=_config()) for s in specs]
        texts = [m.complete(_msgs("same prompt")).text for m in models]
        assert [c.cached for c in (m.complete(_msgs("same prompt")) for m in models)] == [True] * 3
        assert texts[0] != texts[1]
        assert len(server.chat_requests) == 2 and len(other.chat_requests) == 1
        assert len(models[0].cache.stats()) == 3  # three model identities, one entry each
    finally:
        other.close()


def test_choices_reach_a_compat_server_as_a_grammar(server):
    model = make(f"openai-compat:{server.base_url}#m1", cache=False, config=_known(server))
    c = model.complete(_msgs(), choices=["NAME Alice ACTION up", 'SAY "hi"\n'])
    assert c.text == "NAME Alice ACTION up"  # the fake answers the grammar's first choice
    grammar = server.chat_requests[0]["body"]["grammar"]
    assert grammar == 'root ::= "NAME Alice ACTION up" | "SAY \\"hi\\"\\n"\n'


def test_no_api_key_in_any_file_under_the_run_dir(server, tmp_path):
    store = RunStore(tmp_path / "run").create()
    spec = f"openai-compat:{server.base_url}#m1"
    model = make(spec, call_log=store.llm_calls_path, cache=tmp_path / "run" / "cache.sqlite3",
                 config=_config())
    server.script.extend(["500", "ok", "401"])
    model.complete(_msgs(f"my key is {KEY}"))  # even if a prompt quotes it
    with pytest.raises(CoopbenchError):
        model.complete(_msgs("again"))  # the 401 body echoes the Authorization header
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.chat_requests)  # it was sent
    assert KEY not in repr(model.backend) and KEY not in model.spec
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert store.llm_calls_path in files and len(_lines(store.llm_calls_path)) == 2
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
        assert b"Zq9SECRET" not in path.read_bytes(), path


def test_openai_without_a_key_is_one_clear_line(tmp_path):
    with pytest.raises(CoopbenchError, match="set OPENAI_API_KEY"):
        make("openai:gpt-4o-mini", cache=False, config=_config())


def test_keys_and_prices_come_from_the_config_file(server, tmp_path, monkeypatch):
    config_file = tmp_path / "llm.yaml"
    config_file.write_text(
        f'timeout_s: 0.5\nbackoff_s: 0.01\nendpoints:\n  "{server.base_url}":\n'
        "    api_key_env: MY_KEY\n    concurrency: 3\n"
        f'prices:\n  "openai-compat:{server.base_url}#m1": {{input: 1.0, output: 2.0}}\n'
    )
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(config_file))
    monkeypatch.setenv("MY_KEY", "sk-from-config-env-0000")
    model = make(f"openai-compat:{server.base_url}#m1", cache=False)
    c = model.complete(_msgs())
    assert server.chat_requests[0]["auth"] == "Bearer sk-from-config-env-0000"
    assert c.usage.cost_usd == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)
    config_file.write_text("endpoints: [1, 2]\n")
    with pytest.raises(CoopbenchError, match="endpoints"):
        make(f"openai-compat:{server.base_url}#m1", cache=False)
    config_file.write_text("timeout: 3\n")
    with pytest.raises(CoopbenchError, match="unknown key"):
        make(f"openai-compat:{server.base_url}#m1", cache=False)


def _child_call(model, queue) -> None:
    queue.put(model.complete(_msgs("from the child")).text)


def test_a_forked_worker_gets_its_own_event_loop_and_cache_connection(server, tmp_path):
    import multiprocessing

    model = make(f"openai-compat:{server.base_url}#m1", cache=tmp_path / "c.sqlite3",
                 config=_config())
    model.complete(_msgs("from the parent"))  # starts the loop thread and opens the cache
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_call, args=(model, queue))
    child.start()
    assert queue.get(timeout=60) == "m1 says: from the child"
    child.join(timeout=60)
    assert child.exitcode == 0
    assert model.complete(_msgs("from the child")).cached  # the child's answer was cached


def test_a_broken_cache_file_costs_calls_not_the_run(server, tmp_path):
    db = tmp_path / "cache.sqlite3"
    model = make(f"openai-compat:{server.base_url}#m1", cache=db, config=_config())
    model.complete(_msgs("a"))
    model.cache._local.conn.execute("DROP TABLE responses")  # the file is damaged under us
    with pytest.warns(UserWarning, match="unusable"):
        c = model.complete(_msgs("a"))
    assert c.text == "m1 says: a" and not c.cached and len(server.chat_requests) == 2


def test_openai_scheme_prices_calls_and_sends_choices_as_a_json_schema(server, monkeypatch,
                                                                        tmp_path):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # stands in for api.openai.com
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test-key-0123456789")
    server.kind = "openai"  # unknown fields refused, strict json_schema honoured
    log = tmp_path / "calls.jsonl"
    model = make("openai:gpt-4o-mini", call_log=log, cache=False, config=_config())
    assert model.model_id == f"openai:{server.base_url}#gpt-4o-mini"
    with pytest.warns(CoopbenchWarning, match="sampled replies"):  # no /completions there
        c = model.complete(_msgs("hi"), choices=["a", "b"])  # probes first
    assert c.text == "a"  # the reply {"choice": "a"} decoded back to the plain choice
    body = server.chat_requests[-1]["body"]
    assert "grammar" not in body and "guided_choice" not in body
    assert body["response_format"]["json_schema"]["schema"]["properties"]["choice"]["enum"] == [
        "a", "b"]
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body
    assert server.chat_requests[0]["auth"] == "Bearer sk-openai-test-key-0123456789"
    assert c.usage.cost_usd == pytest.approx((11 * 0.15 + 7 * 0.60) / 1e6)
    assert model.usage.cost_usd == c.usage.cost_usd
    assert b"sk-openai-test-key" not in log.read_bytes()
