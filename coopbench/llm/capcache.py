"""Probed capabilities remembered beside the response cache, one JSON file per endpoint+model.

`<cache root>/capabilities/<hash of base URL and model>.json` holds, per capability probed,
its value, the notes on why it is missing and when it was probed. A runner probes once at a
run's start; its worker processes then read the file instead of probing again. Entries
older than `TTL_S` are probed again (servers get upgraded). Writes go to a temporary file
renamed over the old one, so a reader in another process sees the old file or the new one,
never half of one; an unreadable file counts as no entry.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from coopbench.llm import paths
from coopbench.llm.probe import Finding

TTL_S = 24 * 3600  # a day: long enough for a run and its resumes, short for an upgrade


def path_for(base_url: str, model: str) -> Path:
    digest = hashlib.sha256(f"{base_url}#{model}".encode()).hexdigest()[:24]
    return paths.cache_root() / "capabilities" / f"{digest}.json"


def read(base_url: str, model: str, ttl_s: float = TTL_S) -> dict[str, Finding]:
    """The fresh findings remembered for this endpoint and model ({} when none)."""
    path = path_for(base_url, model)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("base_url") != base_url or data.get(
            "model") != model or not isinstance(data.get("parts"), dict):
        return {}
    found: dict[str, Finding] = {}
    for part, entry in data["parts"].items():
        try:
            age = time.time() - calendar.timegm(time.strptime(entry["probed_at"],
                                                              "%Y-%m-%dT%H:%M:%SZ"))
            finding = Finding(entry["value"], tuple(str(n) for n in entry.get("notes", ())),
                              entry["probed_at"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= age <= ttl_s and (finding.value is None or isinstance(finding.value, str)):
            found[str(part)] = finding
    return found


def write(base_url: str, model: str, found: dict[str, Finding]) -> None:
    """Add `found` to the remembered findings (best effort: a cache that cannot be written
    costs a probe next time, never the run)."""
    path = path_for(base_url, model)
    parts: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        parts = dict(json.loads(path.read_text(encoding="utf-8"))["parts"])
    for part, finding in found.items():
        parts[part] = {"value": finding.value, "notes": list(finding.notes),
                       "probed_at": finding.probed_at}
    data = {"base_url": base_url, "model": model, "parts": parts}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return
