"""A run directory's `manifest.json`: the spec and where the result came from.

Every wing that writes a run directory (the runner's episodes, credit's training runs) records
the same provenance (git commit and dirty flag, package versions, Python, platform) through
here, so none of them needs the runner to write one.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from coopbench.core.io import write_json_atomic
from coopbench.core.secrets import redact_json

MANIFEST = "manifest.json"
# the other files of a run directory, named once for every wing that reads or writes them
EPISODES = "episodes.jsonl"
LLM_CALLS = "llm_calls.jsonl"
TRANSCRIPTS = "transcripts.jsonl"

TRACKED_PACKAGES = (
    "coopbench", "overcooked-ai", "pettingzoo", "gymnasium", "pymunk", "torch", "numpy",
    "openai", "llama-cpp-python",
)


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The commit and dirty flag of the source tree coopbench runs from, if it is a checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def write_manifest(root: Path, spec: dict[str, Any],
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a fresh `root/manifest.json` (provenance + `spec`, plus `extra` top-level keys)."""
    manifest = {
        **(extra or {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec,
        "git": git_state(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    save_manifest(root, manifest)
    return manifest


def save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Replace `root/manifest.json` atomically, secrets redacted."""
    write_json_atomic(root / MANIFEST, redact_json(manifest))
