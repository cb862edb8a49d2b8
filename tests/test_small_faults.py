"""The smaller faults of issue #25 (6): notices as single lines, and how to resume."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import KEY, FakeServer

MATRIX = """\
name: flaky
envs: [meetgrid/meet-v0]
planners: [central-v0]
llms: ["openai-compat:{url}#m1"]
seeds: 0-3
"""


@pytest.fixture
def environ(tmp_path, meetgrid) -> dict[str, str]:
    config = tmp_path / "llm.yaml"
    config.write_text("max_attempts: 2\nbackoff_s: 0.01\nbackoff_max_s: 0.02\n")
    env = {**os.environ, "COOPBENCH_CACHE_DIR": str(tmp_path / "cache"),
           "COOPBENCH_LLM_CONFIG": str(config), "OPENAI_COMPAT_API_KEY": KEY}
    env.pop("COOPBENCH_LLM_CACHE", None)
    return env


def coopbench(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_an_unusable_llm_cache_is_one_warning_line_not_python_warnings(environ, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    with sqlite3.connect(cache / "llm-cache.sqlite3") as db:  # every write fails as on a full disk
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, model_id TEXT, text TEXT, "
                   "tokens_in INTEGER, tokens_out INTEGER, model TEXT, latency_s REAL, "
                   "created REAL)")
        db.execute("CREATE TRIGGER full BEFORE INSERT ON responses "
                   "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    server = FakeServer()
    try:
        result = coopbench(["run", "--env", "meetgrid/meet-v0", "--planner", "central-v0",
                            "--llm", f"openai-compat:{server.base_url}#m1", "--out",
                            str(tmp_path / "run")], environ)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert len(server.chat_requests) >= 2  # the cache failed on every call, said so once
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: LLM cache"), result.stderr
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr


def test_a_matrix_stopped_by_an_llm_that_gave_up_says_how_to_resume(environ, tmp_path):
    server = FakeServer()
    spec = tmp_path / "spec.yaml"
    spec.write_text(MATRIX.format(url=server.base_url))
    out = tmp_path / "run"
    config = Path(environ["COOPBENCH_LLM_CONFIG"])  # capabilities fixed: no probe eats the 500s
    config.write_text(config.read_text() + f'endpoints:\n  "{server.base_url}":\n'
                      "    constrain: none\n    scoring: sampled\n")
    try:
        server.script.extend(["500"] * 2)  # the first call gives up: the matrix stops
        stopped = coopbench(["matrix", str(spec), "--out", str(out), "--no-report"], environ)
        again = coopbench(["matrix", str(spec), "--out", str(out), "--no-report"], environ)
    finally:
        server.close()
    assert stopped.returncode == 2, stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert "gave up after 2 attempt(s)" in line and "run the same command again to resume" in line
    assert again.returncode == 0, again.stderr
    assert "4 of 4 episodes" in again.stdout
