"""The run's `llm_calls.jsonl`: one JSON line per call, appended and flushed, secrets redacted.

Each line is written with one `write` on a file opened in append mode, so lines from
threads and processes never interleave; a crash loses at most the line in flight. A full or
read-only disk raises `StorageFull` (one line), so the run stops rather than carrying on
without its log, and a short write is cut back off so no half line is left for the resume.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

from coopbench.core.errors import storage_full
from coopbench.core.secrets import REDACTED, redact, register_secret

__all__ = ["REDACTED", "CallLog", "redact", "register_secret"]


class CallLog:
    """Appends call records to one JSONL file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    start = os.fstat(fd).st_size
                    try:
                        if os.write(fd, data) < len(data):  # only a filling disk writes short
                            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    except OSError:  # cut the partial line back off, as core.io does
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, start)
                        raise
                finally:
                    os.close(fd)
            except OSError as exc:
                raise storage_full(exc, self.path) or exc from None
