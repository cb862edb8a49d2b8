"""The run directory: `manifest.json`, append-only `episodes.jsonl`, and friends.

Writes are crash-safe: the manifest is replaced atomically (temp file + rename), and each
episode is one JSON line appended, flushed and fsynced as it finishes, so a crash loses at
most the episode in flight. Reading tolerates a torn last line: it is reported and skipped,
and every complete line before it is kept.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from coopbench.errors import CoopbenchError
from coopbench.types import EpisodeResult

MANIFEST = "manifest.json"
EPISODES = "episodes.jsonl"
LLM_CALLS = "llm_calls.jsonl"
TRANSCRIPTS = "transcripts.jsonl"

TRACKED_PACKAGES = (
    "coopbench", "overcooked-ai", "pettingzoo", "gymnasium", "pymunk", "torch", "numpy",
    "openai", "llama-cpp-python",
)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so readers see the old or the new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, flushed and fsynced before returning."""
    line = json.dumps(record, sort_keys=True, default=str)
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass
class JsonlRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: list[int] = field(default_factory=list)  # 1-based line numbers skipped


def read_jsonl(path: Path) -> JsonlRead:
    """Every complete JSON line of `path`; unparseable lines are listed, not fatal."""
    out = JsonlRead()
    if not Path(path).exists():
        return out
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                out.records.append(json.loads(raw))
            except json.JSONDecodeError:
                out.torn_lines.append(number)
    return out


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


class RunStore:
    """One run directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def episodes_path(self) -> Path:
        return self.root / EPISODES

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def llm_calls_path(self) -> Path:
        return self.root / LLM_CALLS

    @property
    def transcripts_path(self) -> Path:
        return self.root / TRANSCRIPTS

    def create(self) -> RunStore:
        """Make the directory (and parents) or fail with one clear line."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise CoopbenchError(
                f"cannot write to output directory {self.root}: {exc.strerror}"
            ) from None
        return self

    def write_manifest(
        self, spec: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write a fresh manifest (provenance + `spec`, plus any `extra` top-level keys)."""
        manifest = {
            **(extra or {}),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "spec": spec,
            "git": git_state(),
            "packages": package_versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }
        write_json_atomic(self.manifest_path, manifest)
        return manifest

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise CoopbenchError(f"{self.manifest_path} is not valid JSON: {exc}") from exc

    def repair_torn_tail(self, path: Path | None = None) -> int:
        """Cut a torn last line (a crash mid-write) off `path` so appends start clean.

        The cut bytes are kept in `<name>.torn` rather than thrown away. Returns their count.
        """
        path = Path(path or self.episodes_path)
        if not path.exists():
            return 0
        data = path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(path.with_name(path.name + ".torn"), "ab") as f:
            f.write(data[keep:] + b"\n")
        with open(path, "r+b") as f:
            f.truncate(keep)
        return len(data) - keep

    def append_episode(self, result: EpisodeResult) -> None:
        append_jsonl(self.episodes_path, result.to_json())

    def read_episodes(self) -> tuple[list[EpisodeResult], list[int]]:
        """(complete episodes, torn line numbers)."""
        read = read_jsonl(self.episodes_path)
        return [EpisodeResult.from_json(r) for r in read.records], read.torn_lines

    def append_transcript(self, record: dict[str, Any]) -> None:
        append_jsonl(self.transcripts_path, record)

    def append_transcripts(self, records: Iterable[dict[str, Any]]) -> None:
        """An episode's steps with one write, not fsynced: transcripts are written before
        the episode's line, and a resume drops the lines of episodes that never finished."""
        lines = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)
        if not lines:
            return
        with open(self.transcripts_path, "a") as f:
            f.write(lines)
