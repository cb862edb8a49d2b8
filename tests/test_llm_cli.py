"""`coopbench llm check|serve|cache`, run as users run them (subprocesses, real exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys

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

