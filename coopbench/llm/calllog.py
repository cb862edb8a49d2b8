"""The run's `llm_calls.jsonl`: one JSON line per call, appended and flushed, secrets redacted.

Each line is written with one `write` on a file opened in append mode, so lines from
threads and processes never interleave; a crash loses at most the line in flight.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
# Key-shaped strings and auth headers, in case one arrives by a path we did not register.
_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,}"),
)
REDACTED = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Remember a secret (an API key) so that `redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret and key-shaped string replaced."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class CallLog:
    """Appends call records to one JSONL file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
