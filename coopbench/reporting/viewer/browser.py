"""Headless Chromium driven over the DevTools protocol through a pipe (no websocket, no port).

Chromium's `--remote-debugging-pipe` reads protocol messages from file descriptor 3 and writes
its answers to descriptor 4, each message a JSON text ended by a NUL byte. This small client
opens one page, collects every console message, uncaught exception and log entry (failed
loads, CSP refusals), evaluates expressions and takes screenshots: what the viewer's browser
test and the overview-load benchmark need, with nothing to install but Debian's `chromium`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable on PATH (or in $COOPBENCH_CHROMIUM), None if there is none."""
    env = os.environ.get("COOPBENCH_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _above_4(fd: int) -> int:
    """`fd` moved to a number above 4, so mapping the pipes onto 3 and 4 cannot clobber one."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Chromium:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900,
                 timeout_s: float = 30.0) -> None:
        exe = executable or find_chromium()
        if exe is None:
            raise CoopbenchError("no Chromium found (install Debian's `chromium` package)")
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._next = 0
        self._profile = tempfile.mkdtemp(prefix="coopbench-chromium-")
        self._log = Path(self._profile) / "stderr.log"
        self._log_file = open(self._log, "wb")  # noqa: SIM115  (closed in close())
        to_child, self._out = os.pipe()  # we write commands; Chromium reads them on fd 3
        self._in, from_child = os.pipe()  # Chromium answers on fd 4; we read them
        to_child, from_child = _above_4(to_child), _above_4(from_child)
        args = ["--headless", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio",
                "--no-sandbox", f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}", "about:blank"]
        # bash maps the two pipe ends onto descriptors 3 and 4, then becomes Chromium (dash,
        # Debian's sh, cannot name descriptors above 9)
        self.proc = subprocess.Popen(
            [shutil.which("bash") or "bash", "-c",
             f'exec "$0" "$@" 3<&{to_child} 4>&{from_child}', exe, *args],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._log_file,
        )
        os.close(to_child)
        os.close(from_child)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, CoopbenchError):
            self.send("Browser.close", session=False, wait=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log_file.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol ---------------------------------------------------------------------

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._replies[-1] = {"error": {"message": "Chromium closed the pipe"}}
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             wait: bool = True) -> dict[str, Any]:
        """One command; its result (raises on a protocol error or a timeout)."""
        with self._cond:
            self._next += 1
            ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        try:
            os.write(self._out, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise CoopbenchError(f"Chromium exited before {method}: {self.log_tail()}") from None
        if not wait:
            return {}
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while ident not in self._replies:
                if -1 in self._replies:
                    raise CoopbenchError(f"Chromium closed during {method}: {self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CoopbenchError(f"Chromium did not answer {method} in {self.timeout_s} s")
                self._cond.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise CoopbenchError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def log_tail(self, lines: int = 5) -> str:
        """The last lines Chromium wrote to stderr (why it stopped, usually)."""
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def wait_event(self, method: str, after: int = 0) -> dict[str, Any]:
        """The first event `method` at or after index `after` of `events`."""
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if event.get("method") == method:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CoopbenchError(f"no {method} within {self.timeout_s} s")
                self._cond.wait(left)

    # -- what the tests use ---------------------------------------------------------------

    def open(self, url: str) -> float:
        """Load `url` and wait for its load event; returns the seconds it took."""
        mark = len(self.events)
        start = time.perf_counter()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", mark)
        return time.perf_counter() - start

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CoopbenchError(f"evaluate failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def problems(self, since: int = 0) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries."""
        out = []
        for event in self.events[since:]:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                "warning",
                                                                                "assert"):
                text = " ".join(str(a.get("value", a.get("description", "")))
                                for a in params.get("args", []))
                out.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append("exception: " + str(details.get("exception", {}).get(
                    "description", details.get("text"))))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in (
                    "error", "warning"):
                entry = params["entry"]
                out.append(f"log {entry.get('level')}: {entry.get('text')} {entry.get('url', '')}")
        return out

    def screenshot(self, path: Path, max_height: int = 2400) -> Path:
        """A PNG of the page from the top, as tall as its content (at most `max_height`)."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        clip = {"x": 0, "y": 0, "width": size["width"],
                "height": min(size["height"], max_height), "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                    "captureBeyondViewport": True})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
