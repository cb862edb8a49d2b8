"""No API key on disk (issue #14, case 7), however it is given: an environment variable, the
YAML config file (the key itself or the name of a variable), URL userinfo or a query string
(both refused before anything is written), or echoed back by a server that received it as
the Authorization header. Every file of the run directory and of the LLM cache is scanned.
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

KEY = "Zq9-not-key-shaped-SECRET-42"  # no `sk-` or `api_key=` a pattern would catch


class EchoServer:
    """An OpenAI-compatible endpoint that repeats the key it was sent: in its first replies
    (as if the model said it), then in a 401 body, as some servers do."""

    def __init__(self, replies: int = 3) -> None:
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = str(self.headers.get("Authorization", "")).removeprefix("Bearer ")
                server.calls += 1
                if server.calls <= replies:
                    status, payload = 200, {
                        "id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": f"I was sent {key}"}}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5,
                                  "total_tokens": 10}}
                else:
                    status, payload = 401, {"error": {"message": f"bad key {key}"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = EchoServer()
    yield srv
    srv.close()


@pytest.fixture
def env(meetgrid, tmp_path, monkeypatch):
    """A private cache and config; no key anywhere unless a test puts one."""
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "no-config.yaml"))
    for name in ("OPENAI_API_KEY", "OPENAI_COMPAT_API_KEY", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          timeout=300)


def assert_no_key(tmp_path, *results):
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    echoed = [p.relative_to(tmp_path).as_posix() for p in files
              if b"I was sent [REDACTED]" in p.read_bytes()]
    assert {"run/llm_calls.jsonl", "matrix/llm_calls.jsonl"} <= set(echoed), echoed
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    for result in results:
        assert KEY.encode() not in result.stdout + result.stderr


def endpoint_config(server, key_line: str = "") -> str:
    """The endpoint's capabilities fixed in the config, so no probe runs: the runs reach their
    episodes and the planner's own calls meet the 401 (and their log is scanned)."""
    return (f'endpoints:\n  "{server.base_url}":\n    constrain: none\n    scoring: sampled\n'
            + (f"    {key_line}\n" if key_line else ""))


def run_and_matrix(server, tmp_path, *extra_matrix):
    llm = f"openai-compat:{server.base_url}#m"
    config = Path(os.environ["COOPBENCH_LLM_CONFIG"])
    if not config.exists():
        config.write_text(endpoint_config(server))
    run = cli("run", "--env", "meetgrid/meet-v0", "--planner", "llm/central-v0", "--llm", llm,
              "--seeds", "0-1", "--out", str(tmp_path / "run"))
    server.calls = 0
    spec = tmp_path / "spec.yaml"
    spec.write_text(f'name: s\nenvs: [meetgrid/meet-v0]\nplanners: [llm/central-v0]\n'
                    f'llms: ["{llm}"]\nseeds: 0-1\n')
    matrix = cli("matrix", str(spec), "--out", str(tmp_path / "matrix"), "--no-report",
                 *extra_matrix)
    for result in (run, matrix):
        assert result.returncode == 2, result.stderr
        assert b"authentication failed (HTTP 401)" in result.stderr
    assert server.calls > 0
    return run, matrix


def test_a_key_from_the_environment_and_echoed_by_the_server_never_reaches_a_file(
    env, server, tmp_path
):
    env.setenv("OPENAI_COMPAT_API_KEY", KEY)
    run, matrix = run_and_matrix(server, tmp_path, "--workers", "2")  # parent + workers
    assert b"[REDACTED]" in (tmp_path / "matrix" / "manifest.json").read_bytes()
    assert (tmp_path / "run" / "llm_calls.jsonl").exists()
    assert_no_key(tmp_path, run, matrix)
    # the run's stderr is the error alone: no blank line from the progress display before it
    assert run.stderr.decode().splitlines() == [run.stderr.decode().strip()]


@pytest.mark.parametrize("how", ["api_key", "api_key_env"])
def test_a_key_from_the_config_file_never_reaches_a_file(env, server, tmp_path, how):
    config = tmp_path / "llm.yaml"
    if how == "api_key":
        config.write_text(endpoint_config(server, f'api_key: "{KEY}"'))
    else:
        config.write_text(endpoint_config(server, "api_key_env: MY_KEY"))
        env.setenv("MY_KEY", KEY)
    env.setenv("COOPBENCH_LLM_CONFIG", str(config))
    run, matrix = run_and_matrix(server, tmp_path)
    config.unlink()  # the config file itself is the one place the key may be
    assert_no_key(tmp_path, run, matrix)


def test_a_401_at_the_capability_probe_stops_the_run_before_anything_is_written(
    env, server, tmp_path
):
    env.setenv("OPENAI_COMPAT_API_KEY", KEY)
    run = cli("run", "--env", "meetgrid/meet-v0", "--planner", "llm/central-v0", "--llm",
              f"openai-compat:{server.base_url}#m", "--out", str(tmp_path / "run"))
    assert run.returncode == 2
    lines = run.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "authentication failed (HTTP 401)" in lines[0], lines
    assert KEY.encode() not in run.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("url", [f"http://user:{KEY}@127.0.0.1:9/v1",
                                 f"http://127.0.0.1:9/v1?api_key={KEY}",
                                 f"http://{KEY}@127.0.0.1:9/v1?token={KEY}"],
                         ids=["userinfo", "query", "both"])
def test_a_key_in_the_url_is_refused_before_anything_is_written(env, tmp_path, url):
    llm = f"openai-compat:{url}#m"
    run = cli("run", "--env", "meetgrid/meet-v0", "--planner", "llm/central-v0", "--llm", llm,
              "--out", str(tmp_path / "run"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f'name: s\nenvs: [meetgrid/meet-v0]\nplanners: [llm/central-v0]\n'
                    f'llms: ["{llm}"]\nseeds: 0\n')
    matrix = cli("matrix", str(spec), "--out", str(tmp_path / "matrix"), "--no-report")
    dry = cli("matrix", str(spec), "--out", str(tmp_path / "matrix"), "--dry-run")
    for result in (run, matrix, dry):
        assert result.returncode == 2
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "not in the URL" in lines[0], lines
        assert "***" in lines[0]  # the spec is named, its credential masked
    assert not (tmp_path / "run").exists() and not (tmp_path / "matrix").exists()
    spec.unlink()  # the spec file is the user's own; everything coopbench wrote is scanned
    for result in (run, matrix, dry):
        assert KEY.encode() not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path
