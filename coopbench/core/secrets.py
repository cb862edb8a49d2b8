"""Secrets never reach a file: a registry of known keys and a `redact` that removes them.

It lives outside `coopbench.llm` so that the results store can redact what it writes without
importing the LLM layer. Keys are registered where they are read (the remote backend), and
`coopbench.llm.config.register_keys()` registers every key the environment and the LLM
config file hold, so a process that never builds a remote model (the matrix process) still
knows them.
"""

from __future__ import annotations

import re
import threading
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


def redact_json(data: Any) -> Any:
    """`data` (JSON-compatible) with secrets removed from every string, keys included."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_json(k) if isinstance(k, str) else k: redact_json(v)
                for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_json(v) for v in data]
    return data
