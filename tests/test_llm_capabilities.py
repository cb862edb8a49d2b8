"""Server capabilities, probed and remembered (`coopbench.llm.probe`, `coopbench.llm.capcache`).

Against the loopback fake server acting as each server kind (`fake_openai.KINDS`, whose
request and response shapes are transcribed, not recorded, from each server's documentation
and source; the sources are named there): what the probe finds, how many requests it costs
(never the run's retries), the error rules, the cache and the config overrides.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
from fake_openai import KEY, FakeServer, isolate

from coopbench.core.errors import CoopbenchError, CoopbenchWarning
from coopbench.llm import capcache, make, probe
from coopbench.llm.config import LLMConfig

MESSAGES = [{"role": "user", "content": "please go to the door"}]
CANDIDATES = ["go to the door", "wait"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    isolate(tmp_path, monkeypatch)


def _model(server: FakeServer, max_attempts: int = 6, **endpoint):
    config = LLMConfig(timeout_s=2.0, max_attempts=max_attempts, backoff_s=0.01,
                       backoff_max_s=0.02,
                       endpoints={server.base_url: endpoint} if endpoint else {})
    return make(f"openai-compat:{server.base_url}#m", cache=False, config=config)


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoopbenchWarning)
        return call()


# kind -> (constrained form, scoring form, chat requests, completions requests) of one probe
EXPECTED = {
    "vllm": ("guided_choice", "batched", 1, 1),
    "ollama": ("json_schema", "sampled", 3, 2),  # list: 400; one prompt: no logprobs
    "openai": ("json_schema", "sampled", 3, 2),  # 400, 400, ok; 404, 404
    "llama-cpp-python": ("grammar", "per-prompt", 2, 4),  # list: 500 twice; 2 single prompts
    "default": ("grammar", "batched", 2, 1),
    "shifted": ("grammar", "sampled", 2, 3),  # echoed, but one position off: caught
    "bare": (None, "sampled", 3, 2),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_server_kind_is_probed_to_its_capabilities(server, kind):
    server.kind = kind
    form, scoring, chats, completions = EXPECTED[kind]
    caps = _quiet(lambda: _model(server).capabilities())
    assert (caps.constrained, caps.scoring, caps.source) == (form, scoring, "probed")
    assert caps.probed_at and caps.probed_at.endswith("Z")
    # every probe request counted: no retry was spent on a capability the server lacks
    assert (len(server.chat_requests), len(server.completion_requests)) == (chats, completions)
    assert all("\n" not in note for note in caps.notes)
    assert (form is None) == any(n.startswith("constrained choice") for n in caps.notes)
    assert (scoring == "sampled") == any(n.startswith("scoring") for n in caps.notes)


def test_probe_requests_have_the_documented_shapes(server):
    server.kind = "openai"
    _quiet(lambda: _model(server).capabilities())
    guided, grammar, schema = (r["body"] for r in server.chat_requests)
    assert guided["guided_choice"] == list(probe.PROBE_CHOICES)
    assert grammar["grammar"] == 'root ::= "zebra-7" | "kiwi-3"\n'
    assert schema["response_format"]["type"] == "json_schema"
    assert schema["response_format"]["json_schema"]["strict"] is True
    batched, single = (r["body"] for r in server.completion_requests)
    assert batched["prompt"] == [probe.SCORE_BASE + e for e in probe.SCORE_ENDINGS]
    assert single["prompt"] == probe.SCORE_BASE + probe.SCORE_ENDINGS[0]
    assert batched["echo"] is True and batched["logprobs"] == 1


def test_a_server_that_ignores_the_field_is_not_supported(server):
    server.kind = "bare"  # answers 200 with free text whatever is sent
    caps = _quiet(lambda: _model(server).capabilities())
    assert caps.constrained is None
    assert "guided_choice ignored" in caps.notes[0] and "json_schema ignored" in caps.notes[0]


def test_500_twice_is_not_supported_and_costs_no_retries(server):
    server.kind = "vllm"
    server.script.extend(["500", "500"])  # the guided_choice probe, asked twice
    caps = _model(server).capabilities()
    assert caps.constrained == "json_schema"  # vLLM ignores `grammar`, honours the schema
    bodies = [r["body"] for r in server.chat_requests]
    assert ["guided_choice" in b for b in bodies] == [True, True, False, False]
    # guided_choice twice, then grammar and json_schema once each: no retries burnt


def test_500_twice_on_every_form_says_so(server):
    server.kind = "bare"
    server.script.extend(["500"] * 6)
    caps = _quiet(lambda: _model(server).capabilities())
    assert caps.constrained is None and len(server.chat_requests) == 6
    assert caps.notes[0].count("HTTP 500 (internal error) twice") == 3


def test_500_then_success_is_supported(server):
    server.kind = "vllm"
    server.script.append("500")
    caps = _model(server).capabilities()
    assert caps.constrained == "guided_choice" and len(server.chat_requests) == 2


def test_deterministic_refusals_are_asked_once(server):
    server.kind = "vllm"
    server.script.extend(["http:422", "http:501"])  # guided_choice, then grammar
    caps = _model(server).capabilities()
    assert caps.constrained == "json_schema"  # vLLM honours response_format as well
    assert len(server.chat_requests) == 3


def test_429_then_success_is_supported_with_a_retry(server):
    server.kind = "vllm"
    server.script.append("429:0")
    caps = _model(server).capabilities()
    assert caps.constrained == "guided_choice"
    assert len(server.chat_requests) == 2  # the 429 retried by the RetryPolicy


def test_a_hang_is_transient_and_retried(server):
    server.kind = "vllm"
    server.script.append("hang:3")  # past the 2 s per-attempt timeout
    caps = _model(server).capabilities()
    assert caps.constrained == "guided_choice" and len(server.chat_requests) == 2


def test_401_is_one_line_at_once(server):
    server.script.append("401")
    with pytest.raises(CoopbenchError) as info:
        _model(server).capabilities()
    message = str(info.value)
    assert "authentication failed (HTTP 401)" in message and "\n" not in message
    assert KEY not in message and len(server.requests) == 1


def test_no_capability_degrades_to_free_text_and_samples_with_one_notice(server):
    server.kind = "bare"
    model = _model(server, score_samples=3)
    with pytest.warns(CoopbenchWarning) as caught:
        reply = model.complete(MESSAGES, choices=CANDIDATES)
        scores = model.score(MESSAGES, CANDIDATES, seed=1)
        model.complete(MESSAGES, choices=CANDIDATES)
        model.score(MESSAGES, CANDIDATES, seed=2)
    notices = [w for w in caught if issubclass(w.category, CoopbenchWarning)]
    assert len(notices) == 1
    text = str(notices[0].message)
    assert "free text" in text and "sampled replies" in text and "\n" not in text
    assert reply.text == "m says: please go to the door"  # free text, nothing constrained
    run_chats = [r["body"] for r in server.chat_requests[3:]]
    assert not any("grammar" in b or "guided_choice" in b or "response_format" in b
                   for b in run_chats)
    assert scores.method == "sampled" and scores.usage.calls == 3
    assert len(server.completion_requests) == 2  # the probe's, none during the run


def test_json_schema_replies_are_decoded_to_the_plain_choice(server):
    server.kind = "ollama"
    model = _model(server, scoring="sampled")
    reply = model.complete(MESSAGES, choices=CANDIDATES)
    assert reply.text == "go to the door"
    sent = server.chat_requests[-1]["body"]["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["choice"]["enum"] == CANDIDATES and sent["type"] == "object"


def test_per_prompt_scoring_sends_one_request_per_candidate(server, tmp_path):
    server.kind = "llama-cpp-python"
    model = _model(server)
    model.capabilities()
    before = len(server.completion_requests)
    scores = model.score(MESSAGES, CANDIDATES)
    sent = [r["body"]["prompt"] for r in server.completion_requests[before:]]
    assert len(sent) == 2 and all(isinstance(p, str) for p in sent)
    assert scores.method == "logprobs" and scores.usage.calls == 1
    assert scores.best() == 0
    other = FakeServer()
    try:
        batched = _model(other, scoring="batched", constrain="grammar").score(MESSAGES,
                                                                              CANDIDATES)
    finally:
        other.close()
    assert scores.logprobs == pytest.approx(batched.logprobs)  # the same numbers
    assert scores.usage.tokens_in == batched.usage.tokens_in


def test_per_prompt_retries_are_merged(server):
    server.kind = "llama-cpp-python"
    model = _model(server)
    model.capabilities()
    server.script.extend(["429:0"])
    scores = model.score(MESSAGES, CANDIDATES)
    assert scores.method == "logprobs" and model.retries == 1


def test_a_5xx_mid_run_is_transient(server):
    model = _model(server, scoring="batched", constrain="grammar")
    server.script.extend(["500", "http:503"])
    scores = model.score(MESSAGES, CANDIDATES)
    assert scores.method == "logprobs" and model.retries == 2


def test_cache_file_written_read_back_and_refreshed(server, tmp_path):
    server.kind = "vllm"
    first = _model(server).capabilities()
    path = capcache.path_for(server.base_url, "m")
    assert path.parent.parent == tmp_path / "cache"  # beside the response cache
    data = json.loads(path.read_text())
    assert data["base_url"] == server.base_url and data["model"] == "m"
    assert data["parts"]["constrained"]["value"] == "guided_choice"
    sent = len(server.requests)
    again = _model(server).capabilities()  # another process, say: a worker
    assert len(server.requests) == sent  # no probe
    assert again.source == "cache" and again.constrained == first.constrained
    assert again.probed_at == first.probed_at
    fresh = _model(server).capabilities(refresh=True)
    assert fresh.source == "probed" and len(server.requests) == sent + 2


def test_a_stale_or_broken_cache_is_probed_again(server):
    server.kind = "vllm"
    _model(server).capabilities()
    path = capcache.path_for(server.base_url, "m")
    data = json.loads(path.read_text())
    for part in data["parts"].values():
        part["probed_at"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(data))
    assert _model(server).capabilities().source == "probed"
    path.write_text("{not json")
    assert _model(server).capabilities().source == "probed"
    assert capcache.read(server.base_url, "m")  # rewritten whole


def test_config_overrides_win(server):
    server.kind = "vllm"
    caps = _model(server, constrain="grammar", scoring="per-prompt").capabilities()
    assert (caps.constrained, caps.scoring, caps.source) == ("grammar", "per-prompt", "config")
    assert server.requests == []  # nothing probed
    half = _model(server, constrain="none").capabilities()  # scoring still probed
    assert half.constrained is None and half.scoring == "batched"
    assert half.source == "probed" and len(server.chat_requests) == 0
    assert any("constrain: none" in n for n in half.notes)


@pytest.mark.parametrize("setting", [{"constrain": "regex"}, {"scoring": "tree"}])
def test_bad_overrides_are_one_line(server, setting):
    with pytest.raises(CoopbenchError, match=next(iter(setting))):
        _model(server, **setting)


def test_openai_scheme_is_probed_too(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test-key-0123456789")
    server.kind = "openai"
    model = make("openai:gpt-4o-mini", cache=False,
                 config=LLMConfig(timeout_s=2.0, backoff_s=0.01, backoff_max_s=0.02))
    caps = _quiet(model.capabilities)
    assert (caps.constrained, caps.scoring) == ("json_schema", "sampled")
    assert "This is a chat model" in caps.notes[0]
    assert all(r["body"].get("max_completion_tokens") for r in server.chat_requests)
    assert not any("max_tokens" in r["body"] for r in server.chat_requests)


def test_check_echoes_catches_each_misalignment():
    prompts = [probe.SCORE_BASE + e for e in probe.SCORE_ENDINGS]

    def echo(prompt: str, shift: int) -> tuple[str, list, list]:
        from fake_openai import fake_logprobs
        tokens = fake_logprobs(prompt)
        lps = [lp for _, _, lp in tokens]
        if shift > 0:  # each value belongs to the token before
            lps = [None] + lps[:-1]
        return prompt + " ok", lps, [off for _, off, _ in tokens]

    assert probe.check_echoes([echo(p, 0) for p in prompts], prompts) == ""
    assert "not aligned" in probe.check_echoes([echo(p, 1) for p in prompts], prompts)
    text, lps, offsets = echo(prompts[0], 0)
    assert "offsets" in probe.check_echoes(
        [(text, lps, offsets[::-1]), echo(prompts[1], 0)], prompts)
    assert "log-probabilities for" in probe.check_echoes(
        [(text, lps[:-1], offsets), echo(prompts[1], 0)], prompts)
    assert "not echoed" in probe.check_echoes([(" ok", lps, offsets), echo(prompts[1], 0)],
                                              prompts)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", "llm", *args],
                          capture_output=True, text=True, timeout=300)


def test_llm_check_prints_the_capability_table(server):
    server.kind = "llama-cpp-python"
    spec = f"openai-compat:{server.base_url}#m"
    first = _cli("check", spec)
    assert first.returncode == 0, first.stderr
    assert "constrained choice  grammar   (probed)" in first.stdout
    assert "scoring             per-prompt   (probed)" in first.stdout
    assert "probed at           20" in first.stdout and "notes               -" in first.stdout
    sent = len(server.requests)
    again = _cli("check", spec)
    assert "source              cache" in again.stdout and len(server.requests) == sent + 1
    fresh = _cli("check", spec, "--refresh")
    assert "source              probed" in fresh.stdout
    assert len(server.requests) > sent + 2
    server.kind = "bare"
    bare = _cli("check", spec, "--refresh")
    assert bare.returncode == 0 and "constrained choice  none" in bare.stdout
    assert "guided_choice ignored" in bare.stdout and "warning" not in bare.stderr


def test_llm_check_prints_declared_capabilities_of_a_simulated_model():
    result = _cli("check", "sim:expert")
    assert result.returncode == 0, result.stderr
    assert "constrained choice  native   (declared)" in result.stdout
    assert "scoring             simulated" in result.stdout
    assert "decoding: auto      free" in result.stdout


def test_a_broken_body_is_asked_once_more_not_retried(server):
    server.kind = "vllm"
    server.script.extend(["malformed", "malformed"])  # guided_choice twice
    caps = _model(server).capabilities()
    assert caps.constrained == "json_schema" and len(server.chat_requests) == 4
    server.script.extend(["malformed"])
    assert _model(server).capabilities(refresh=True).constrained == "guided_choice"


def test_concurrent_writers_never_leave_half_a_file(tmp_path):
    import threading

    from coopbench.llm.probe import Finding

    def writer(n: int) -> None:
        for i in range(40):
            capcache.write("http://x/v1", "m", {"scoring": Finding(
                "batched", (f"writer {n} round {i}" * 50,), probe.now_iso())})

    capcache.write("http://x/v1", "m", {"scoring": Finding("batched", (), probe.now_iso())})
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):
        seen.append(capcache.read("http://x/v1", "m"))
    for t in threads:
        t.join()
    final = capcache.read("http://x/v1", "m")
    assert final["scoring"].value == "batched"
    assert all(found["scoring"].value == "batched" for found in seen)  # never half a file
    leftovers = [p.name for p in capcache.path_for("http://x/v1", "m").parent.iterdir()]
    assert len(leftovers) == 1  # no temporary file left behind
