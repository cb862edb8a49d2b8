"""Planners against the real server: `coopbench llm serve` on the embedded model, reached
through `openai-compat:` as a user would, by a `coopbench matrix` subprocess.

Central Plan (constrained choice) and scored ReAd-J (candidate scoring) each play one short
Sort episode: the endpoint is probed once at the run's start, both planners decode
constrained, nothing fails to parse and no request is retried.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from coopbench.llm import paths

SPEC = """name: served
envs: [roco/sort-level1-v0]
planners:
  - {{id: llm/central-v0, kwargs: {{max_queries_per_step: 2}}}}
  - read/read-j-scored-v0
llms: ["{llm}"]
seeds: [0]
caps: {{max_steps: 2}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(the `--llm` spec the server printed, the environment to run coopbench in)."""
    tmp = tmp_path_factory.mktemp("served")
    env = {**os.environ, "COOPBENCH_MODEL_DIR": str(paths.model_dir()),
           "COOPBENCH_CACHE_DIR": str(tmp / "cache"),
           "COOPBENCH_LLM_CONFIG": str(tmp / "llm.yaml")}
    port = _free_port()
    log = open(tmp / "serve.log", "w+")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "coopbench", "llm", "serve", "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"llm serve did not come up: {log.read()[-2000:]}")
                time.sleep(0.5)
        log.seek(0)
        spec = next(line.split("--llm", 1)[1].strip().strip("'")
                    for line in log.read().splitlines() if "--llm" in line)
        yield spec, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_central_and_scored_read_j_complete_against_the_real_server(served, tmp_path):
    spec, env = served
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(llm=spec))
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "coopbench", "matrix", str(path), "--out",
                             str(out), "--no-report"], capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert {e["planner"] for e in episodes} == {"llm/central-v0", "read/read-j-scored-v0"}
    for e in episodes:
        assert e["error"] is None and e["parse_failures"] == 0, e
        assert e["decoding"] == "constrained" and e["llm_queries"] > 0, e
    calls = [json.loads(line) for line in (out / "llm_calls.jsonl").read_text().splitlines()]
    assert calls and all(not c.get("retries") and c.get("error") is None for c in calls)
    manifest = json.loads((out / "manifest.json").read_text())
    caps = manifest["llms"]["models"][spec]["capabilities"]
    assert caps["constrained"] is not None and caps["scoring"] in ("batched", "per-prompt")
    notices = [line for line in result.stderr.splitlines()
               if "127.0.0.1" in line and "warning" in line.lower()]
    assert not notices  # no capability found missing, nothing degraded
