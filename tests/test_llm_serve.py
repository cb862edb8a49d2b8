"""`coopbench llm serve`, run as users run it: a subprocess on a free loopback port, asked
through the `openai` SDK and raw HTTP, answering what the embedded model answers.

One server (the real embedded model) serves the whole module; the same model is also
loaded in this process to compare replies and scores with the embedded backend.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.llm import parse, paths
from coopbench.llm.local import LocalBackend, _render_prompt
from coopbench.llm.request import Request, ScoreRequest
from coopbench.llm.scoring import end_marker, render_prefix, span_logprob
from coopbench.llm.token_tree import TokenTreeScorer

MESSAGES = (
    {"role": "system", "content": "You plan for two cooks, Alice and Bob, in a kitchen. "
                                  "Reply with one joint action line."},
    {"role": "user", "content": "Serve-test kitchen: Alice holds an onion next to the pot; "
                                "Bob is at the dish rack."},
)
ACTIONS = (
    "NAME Alice ACTION interact NAME Bob ACTION stay",
    "NAME Alice ACTION move up NAME Bob ACTION interact",
    "NAME Alice ACTION stay NAME Bob ACTION move left",
)
LIST_TOLERANCE = 1e-6  # one request with every candidate: the very batches `score` runs
SINGLE_TOLERANCE = 0.5  # one candidate per request: each tail is its own batch (measured <= 0.26)


@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    stdout_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="unused", timeout=120.0,
                             max_retries=0)

    def post(self, path: str, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(self.base_url + path, data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["COOPBENCH_MODEL_DIR"] = str(paths.model_dir())  # reuse the assembled GGUF
    env["COOPBENCH_CACHE_DIR"] = str(tmp / "cache")
    env["COOPBENCH_LLM_CONFIG"] = str(tmp / "llm.yaml")
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The server on a free port, ready (it answers /v1/models); stopped with SIGTERM, which
    must end it with status 0."""
    tmp = tmp_path_factory.mktemp("serve")
    port = _free_port()
    out = tmp / "stdout.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "coopbench", "llm", "serve", "--port",
                                 str(port), "--n-ctx", "2048"], stdout=fh,
                                stderr=subprocess.PIPE, text=True, env=_env(tmp))
    srv = Served(proc, port, out)
    try:
        deadline = time.monotonic() + 180  # a deadline for start-up, not a speed assertion
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                with urllib.request.urlopen(f"{srv.base_url}/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        stderr = proc.stderr.read() if proc.stderr else ""
        assert status == 0 and "Traceback" not in stderr, stderr[-2000:]


@pytest.fixture(scope="module")
def embedded() -> LocalBackend:
    backend = LocalBackend.for_spec(parse("local"))
    backend.llama()
    return backend


def test_prints_where_it_serves_and_lists_its_alias(served, embedded):
    lines = served.stdout_path.read_text().splitlines()
    assert lines[0].startswith("serving ") and f"127.0.0.1:{served.port}/v1" in lines[0]
    assert lines[1] == (f"use it with:  --llm 'openai-compat:http://127.0.0.1:{served.port}"
                        f"/v1#{embedded.name}'")
    assert [m.id for m in served.client().models.list().data] == [embedded.name]


def test_chat_answers_what_the_embedded_model_answers(served, embedded):
    request = Request(messages=MESSAGES, temperature=0.8, max_tokens=12, seed=3)
    embedded.llama()[0].reset()  # evaluate the prompt from scratch, as the fresh server does
    reply = served.client().chat.completions.create(
        model="any-name", messages=list(MESSAGES), temperature=0.8, max_tokens=12,
        seed=request.sampling_seed())
    assert reply.model == embedded.name and reply.object == "chat.completion"
    assert reply.choices[0].message.content == embedded.generate(request).text
    assert reply.usage.prompt_tokens > 20 and 0 < reply.usage.completion_tokens <= 12


def test_each_constraint_form_answers_one_of_the_choices(served, embedded):
    client = served.client()
    choices = ["MOVE red", "MOVE blue", "STAY"]
    base = {"model": "m", "messages": [{"role": "user", "content": "Pick a move for the red "
                                        "robot."}], "temperature": 1.0, "seed": 11}
    guided = client.chat.completions.create(**base, extra_body={"guided_choice": choices})
    request = Request(messages=tuple(base["messages"]), choices=tuple(choices),
                      temperature=1.0)
    assert guided.choices[0].message.content in choices
    same = embedded.chat(request.messages, temperature=1.0, max_tokens=request.max_tokens,
                         seed=11, choices=request.choices)[0]
    assert guided.choices[0].message.content == same["choices"][0]["message"]["content"]

    schema = {"type": "json_schema", "json_schema": {
        "name": "move", "strict": True, "schema": {"type": "string", "enum": choices}}}
    structured = client.chat.completions.create(**base, response_format=schema)
    content = structured.choices[0].message.content
    assert content.startswith('"') and json.loads(content) in choices

    grammar = 'root ::= "MOVE red" | "MOVE blue" | "STAY"\n'
    gbnf = client.chat.completions.create(**base, extra_body={"grammar": grammar})
    assert gbnf.choices[0].message.content in choices

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**base, response_format={
            "type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}})


def _one_line_error(status: int, body: str) -> str:
    assert 400 <= status < 500, (status, body)
    assert "\n" not in body.strip()
    return json.loads(body)["error"]["message"]


def test_stream_and_malformed_bodies_are_refused_in_one_line(served):
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert "stream" in _one_line_error(*served.post("/chat/completions",
                                                    json.dumps(chat).encode()))
    assert "not JSON" in _one_line_error(*served.post("/chat/completions", b'{"model": '))
    assert "not JSON" in _one_line_error(*served.post("/completions", b"\xff\xfe"))
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        served.client().completions.create(model="m", prompt="hello there", echo=True,
                                           logprobs=1, max_tokens=5)


def _check_echo(choice, prompt: str) -> tuple[list, list]:
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) > 1
    assert lp.token_logprobs[0] is None and all(isinstance(x, float)
                                                for x in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == prompt  # ASCII prompts: tokens spell it back
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
    return lp.token_logprobs, lp.text_offset


def _fresh_scores(backend: LocalBackend) -> list[float]:
    """`LocalBackend.score`'s computation on a fresh scoring context, as the fresh server
    has (this process's contexts may hold prefixes from other tests: llama.cpp's numbers
    then shift slightly with the batches the prompt is re-evaluated in)."""
    llama, lock = backend.llama()
    with lock:
        text, end = _render_prompt(llama, MESSAGES)
        prompt = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        candidates = [[*llama.tokenize(a.encode("utf-8"), add_bos=False), end]
                      for a in ACTIONS]
        scorer = TokenTreeScorer(llama)
        try:
            return scorer.score(prompt, candidates)
        finally:
            scorer.close()


def test_echoed_log_probabilities_add_up_to_the_embedded_scores(served, embedded):
    prefix = render_prefix(MESSAGES, "chatml")
    prompts = [prefix + a + end_marker("chatml") for a in ACTIONS]
    scores = embedded.score(ScoreRequest(messages=MESSAGES, candidates=ACTIONS)).logprobs
    fresh = _fresh_scores(embedded)
    assert max(abs(s - e) for s, e in zip(fresh, scores, strict=True)) < SINGLE_TOLERANCE
    client = served.client()

    listed = client.completions.create(model="m", prompt=prompts, echo=True, logprobs=1,
                                       max_tokens=1, temperature=0)
    assert [c.index for c in listed.choices] == [0, 1, 2]
    spans = [span_logprob(*_check_echo(c, p), len(prefix), len(p))
             for c, p in zip(listed.choices, prompts, strict=True)]
    assert max(abs(s - e) for s, e in zip(spans, fresh, strict=True)) < LIST_TOLERANCE
    assert spans.index(max(spans)) == scores.index(max(scores))

    singles = []
    for p in prompts:  # one prompt per request, as other clients send them
        reply = client.completions.create(model="m", prompt=p, echo=True, logprobs=1,
                                          max_tokens=0)
        singles.append(span_logprob(*_check_echo(reply.choices[0], p), len(prefix), len(p)))
    assert max(abs(s - e) for s, e in zip(singles, scores, strict=True)) < SINGLE_TOLERANCE
    assert singles.index(max(singles)) == scores.index(max(scores))
    again = client.completions.create(model="m", prompt=prompts, echo=True, logprobs=1,
                                      max_tokens=0)
    assert [c.logprobs.token_logprobs for c in again.choices] == \
        [c.logprobs.token_logprobs for c in listed.choices]  # the remembered prefix reused


def test_text_completion_without_echo(served):
    reply = served.client().completions.create(model="m", prompt=["def add(a, b):", "x = "],
                                               max_tokens=6, temperature=0)
    assert len(reply.choices) == 2 and all(c.text for c in reply.choices)
    assert reply.usage.completion_tokens > 0


def test_concurrent_chat_requests_queue_and_all_succeed(served):
    client = served.client()
    results: list[str] = []
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            reply = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"Say the number {i}."}],
                max_tokens=6, temperature=0)
            results.append(reply.choices[0].message.content)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 8


def test_a_port_in_use_is_one_line(served, tmp_path):
    result = subprocess.run([sys.executable, "-m", "coopbench", "llm", "serve", "--port",
                             str(served.port)], capture_output=True, text=True, timeout=120,
                            env=_env(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot serve" in result.stderr


def test_text_offsets_count_characters_not_bytes():
    from coopbench.llm.serve import text_offsets

    text = "Café → ok"
    pieces = [b"Caf", "é".encode()[:1], "é".encode()[1:] + b" ", "→".encode(), b" ok"]
    tokens, offsets = text_offsets(pieces, text)
    assert offsets == [0, 3, 3, 5, 6] and tokens[0] == "Caf" and tokens[-1] == " ok"
    assert text_offsets([b" Hi", b" there"], "Hi there")[1] == [0, 2]  # added leading space
    with pytest.raises(CoopbenchError, match="spell"):
        text_offsets([b"Hi"], "Ho")
