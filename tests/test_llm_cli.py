"""`coopbench llm check|serve|cache`, run as users run them (subprocesses, real exit codes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from test_llm_remote import KEY, FakeServer

from coopbench.llm import make, paths
from coopbench.llm.config import LLMConfig

ACTIONS = ["NAME Alice ACTION up NAME Bob ACTION stay", "NAME Alice ACTION stay NAME Bob ACTION up"]


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("COOPBENCH_MODEL_DIR", str(paths.model_dir()))  # reuse the assembled GGUF
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "llm.yaml"))
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return dict(os.environ)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", "llm", *args],
                          capture_output=True, text=True, timeout=300)


def test_check_a_simulated_model(env):
    result = cli("check", "sim:expert?noise=0.1")
    assert result.returncode == 0, result.stderr
    assert "(simulated)" in result.stdout and "tokens/s" in result.stdout


@pytest.mark.parametrize(
    "spec, message",
    [("gpt-4o", "unknown scheme"), ("openai:gpt-4o-mini", "set OPENAI_API_KEY"),
     ("sim:expert?noise=7", "noise must lie in [0, 1]")],
)
def test_check_bad_specs_fail_with_one_red_line(env, spec, message):
    result = cli("check", spec)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_check_against_a_server_that_refuses_the_key(env):
    server = FakeServer()
    try:
        (tmp := paths.config_file()).write_text("max_attempts: 2\n")
        server.script.append("401")
        result = cli("check", f"openai-compat:{server.base_url}#m1")
        assert result.returncode == 2 and "authentication failed (HTTP 401)" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and KEY not in result.stderr
        server.script.extend(["500", "ok"])
        ok = cli("check", f"openai-compat:{server.base_url}#m1")
        assert ok.returncode == 0 and "attempts 2" in ok.stdout and "m1-0613" in ok.stdout
        assert tmp.exists()
    finally:
        server.close()


def test_cache_command_counts_entries_per_model(env, tmp_path):
    model = make("sim:expert", cache=False)
    assert model.cache is None
    server = FakeServer()
    try:
        config = LLMConfig(timeout_s=2.0, backoff_s=0.01)
        for name in ("m1", "m2"):
            make(f"openai-compat:{server.base_url}#{name}", config=config).complete(
                [{"role": "user", "content": "hi"}])
    finally:
        server.close()
    listed = cli("cache")
    assert listed.returncode == 0 and "2 entries" in listed.stdout
    assert f"openai-compat:{server.base_url}#m2" in listed.stdout
    assert cli("cache", "--clear").returncode == 0
    assert "empty" in cli("cache").stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_llama_cpp_server_for_the_embedded_model(env):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "coopbench", "llm", "serve", "--port",
                             str(port), "--n-ctx", "2048"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180  # a deadline for start-up, not a speed assertion
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        model = make(f"openai-compat:http://127.0.0.1:{port}/v1#"
                     "qwen2.5-coder-0.5b-instruct-q4_k_m", cache=False,
                     config=LLMConfig(timeout_s=120.0))
        messages = [{"role": "system", "content": "Pick the joint action for two cooks."},
                    {"role": "user", "content": "Alice is below the pot."}]
        c = model.complete(messages, choices=ACTIONS)
        assert c.text in ACTIONS  # llama.cpp's server applied our grammar
        assert c.usage.tokens_in > 10 and c.model.startswith("qwen2.5-coder")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
