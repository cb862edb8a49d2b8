"""The response cache: SQLite in WAL mode under the user cache dir.

The key is the sha256 of a canonical JSON (sorted keys) of the model identity and every
output-changing parameter of the request (messages, choices, temperature, max_tokens,
seed, sample index). Transport knobs (timeouts, retries, concurrency) are not in it.
One connection per thread; WAL lets several processes read while one writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError
from coopbench.llm.request import Request

SCHEMA_VERSION = 1


def cache_key(model_id: str, request: Request) -> str:
    payload = {"v": SCHEMA_VERSION, "model": model_id, **request.output_params()}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Entry:
    text: str
    tokens_in: int
    tokens_out: int
    model: str
    latency_s: float


class ResponseCache:
    """get/put by key; safe across threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn()
        except (OSError, sqlite3.Error) as exc:
            raise CoopbenchError(f"cannot open the LLM cache {self.path}: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never reuse a parent's after fork
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model_id TEXT, "
                "text TEXT, tokens_in INTEGER, tokens_out INTEGER, model TEXT, "
                "latency_s REAL, created REAL)"
            )
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def get(self, key: str) -> Entry | None:
        row = self._conn().execute(
            "SELECT text, tokens_in, tokens_out, model, latency_s FROM responses WHERE key=?",
            (key,),
        ).fetchone()
        return Entry(*row) if row else None

    def put(self, key: str, model_id: str, entry: Entry) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, model_id, entry.text, entry.tokens_in, entry.tokens_out, entry.model,
             entry.latency_s, time.time()),
        )

    def stats(self) -> dict[str, Any]:
        rows = self._conn().execute(
            "SELECT model_id, COUNT(*) FROM responses GROUP BY model_id"
        ).fetchall()
        return {model_id: count for model_id, count in rows}
