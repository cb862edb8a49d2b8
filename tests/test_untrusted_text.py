"""Text that did not come from coopbench is shown, never obeyed (issue #25, 3).

A server's error body and `model` field, printed by `llm check` and `matrix`, rendered rich
markup (`[red]`, `[link=...]`, an OSC 8 hyperlink) and passed escape sequences (clear screen,
set title) to the terminal; piped, the bracketed text vanished. Every such string now goes
through `cli._common.shown`: on a terminal (a real pty) and piped, the text appears as sent,
with control characters written out.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coopbench.cli._common import shown, visible

EVIL = "[red]evil[/red] [link=http://evil.example]click[/link] \x1b[2J\x1b]0;pwned\x07 end"
# what a terminal may receive of it: the same characters, every control one written out
VISIBLE = "[red]evil[/red] [link=http://evil.example]click[/link] \\x1b[2J\\x1b]0;pwned\\x07 end"


class EvilServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 whose every string is hostile."""

    def __init__(self, status: int) -> None:
        status_code = status

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": EVIL, "object": "model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if status_code != 200:
                    self._send(status_code, {"error": {"message": EVIL, "type": "x"}})
                    return
                self._send(200, {
                    "id": "x", "object": "chat.completion", "model": EVIL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": EVIL}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def environ(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "llm.yaml"))
    monkeypatch.setenv("OPENAI_COMPAT_API_KEY", "sk-test-not-a-real-key-000000")
    monkeypatch.setenv("COOPBENCH_LLM_CACHE", "off")
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    return {**env, "TERM": "xterm-256color", "COLUMNS": "400"}


def piped(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                            text=True, timeout=300, env=env)
    return result.returncode, result.stdout + result.stderr


def on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as a person at a terminal would."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "coopbench", *args], stdin=child,
                            stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def assert_shown_not_obeyed(output: str) -> None:
    plain = _without_colours(output).replace("\r\n", "\n")
    assert "\x1b]" not in output  # no OSC: neither a hyperlink (OSC 8) nor a window title
    assert "\x1b[2J" not in output and "\x07" not in output
    assert VISIBLE in plain.replace("\n", ""), plain


def _without_colours(text: str) -> str:
    """Drop the SGR colour sequences rich itself writes on a terminal (ESC [ ... m)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("run", [piped, on_a_terminal], ids=["piped", "terminal"])
def test_llm_check_shows_a_hostile_model_name_and_reply(environ, run):
    server = EvilServer(200)
    try:
        code, output = run(["llm", "check", f"openai-compat:{server.base_url}#m"], environ)
    finally:
        server.close()
    assert code == 0, output
    assert_shown_not_obeyed(output)


@pytest.mark.parametrize("run", [piped, on_a_terminal], ids=["piped", "terminal"])
def test_a_hostile_error_body_is_one_shown_line(environ, run):
    server = EvilServer(400)
    try:
        code, output = run(["llm", "check", f"openai-compat:{server.base_url}#m"], environ)
    finally:
        server.close()
    assert code == 2, output
    lines = [line for line in output.replace("\r\n", "\n").splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("error:", "\x1b[")), output
    assert "Traceback" not in output
    assert_shown_not_obeyed(output)


MATRIX = """\
name: evil
envs: [meetgrid/meet-v0]
planners: [central-v0]
llms: ["openai-compat:{url}#m"]
seeds: 0-1
"""


@pytest.mark.parametrize("run", [piped, on_a_terminal], ids=["piped", "terminal"])
def test_matrix_shows_a_hostile_error_body(meetgrid, environ, tmp_path, run):
    server = EvilServer(400)
    spec = tmp_path / "spec.yaml"
    spec.write_text(MATRIX.format(url=server.base_url))
    try:
        code, output = run(["matrix", str(spec), "--out", str(tmp_path / "run"), "--no-report"],
                           {**environ, "PYTHONPATH": os.environ["PYTHONPATH"]})
    finally:
        server.close()
    assert code == 2, output
    assert "Traceback" not in output
    assert_shown_not_obeyed(output)


def test_shown_writes_out_controls_and_escapes_markup():
    assert visible("a\x1b[2Jb\nc\td\u202ee\x9b") == "a\\x1b[2Jb\\nc\\td\\u202ee\\x9b"
    assert visible("plain · text ✓") == "plain · text ✓"
    from rich.console import Console

    console = Console(file=None, force_terminal=False, width=200, record=True)
    with console.capture() as captured:
        console.print(shown(EVIL), highlight=False)
    assert captured.get().strip() == VISIBLE


@pytest.mark.parametrize("run", [piped, on_a_terminal], ids=["piped", "terminal"])
def test_a_hostile_model_name_in_progress_lines_is_shown(meetgrid, environ, tmp_path, run):
    server = EvilServer(200)
    spec = tmp_path / "spec.yaml"
    spec.write_text(MATRIX.format(url=server.base_url).replace("#m", "#[red]m[/red]")
                    .replace("0-1", "0-0"))
    try:
        code, output = run(["matrix", str(spec), "--out", str(tmp_path / "run"), "--no-report"],
                           {**environ, "PYTHONPATH": os.environ["PYTHONPATH"]})
    finally:
        server.close()
    assert code == 0, output
    assert "\x1b]" not in output and "\x1b[2J" not in output
    assert "#[red]m[/red]" in _without_colours(output).replace("\r\n", "")
