"""The run's `llm_calls.jsonl`: one JSON line per call, appended and flushed, secrets redacted.

Each line is appended whole by `core.io.append_lines` (one `write` on a file opened in append
mode, so lines from threads and processes do not interleave; not fsynced: a crash loses at
most the lines in flight). A full or read-only disk raises `StorageFull` (one line), so the
run stops rather than carrying on without its log, and a short write is cut back off so no
half line is left for the resume.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from coopbench.core.errors import storage_full
from coopbench.core.io import append_lines
from coopbench.core.secrets import REDACTED, redact, register_secret

__all__ = ["REDACTED", "CallLog", "redact", "register_secret"]


class CallLog:
    """Appends call records to one JSONL file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_full(exc, self.path) or exc from None
            append_lines(self.path, line, sync=False)  # one write; cut back off if short
