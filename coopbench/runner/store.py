"""The run directory: `manifest.json`, append-only `episodes.jsonl`, and friends.

Writes are crash-safe: the manifest is replaced atomically (temp file + rename), and each
episode is one JSON line appended, flushed and fsynced as it finishes, so a crash loses at
most the episode in flight. A full or read-only disk is `StorageFull` (one line, the run stops
at once), and a line that could not be completed is cut back off. Everything written passes
through `coopbench.core.secrets.redact`, so no API key reaches a file.

Reading checks every line (see `readback`): a torn last line is reported and skipped, every
complete line before it is kept, and `repair()` moves unusable lines aside before a resume.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from coopbench.core.errors import storage_full
from coopbench.core.io import (
    Lines,
    any_object,
    append_jsonl,
    append_lines,
    json_line,
    make_dir,
    read_lines,
    replace_bytes,
)
from coopbench.core.manifest import (
    EPISODES,
    LLM_CALLS,
    MANIFEST,
    TRANSCRIPTS,
    save_manifest,
    write_manifest,
)
from coopbench.core.types import EpisodeResult
from coopbench.runner import readback

RESERVE = ".reserve"  # deleted on a full disk to make room for the final manifest
RESERVE_MIN_BYTES = 64 * 1024

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
        make_dir(self.root)
        return self

    def write_manifest(
        self, spec: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write a fresh manifest (provenance + `spec`, plus any `extra` top-level keys)."""
        return write_manifest(self.root, spec, extra)

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace manifest.json atomically, secrets redacted."""
        save_manifest(self.root, manifest)

    def read_manifest(self) -> dict[str, Any] | None:
        """The checked manifest, None if there is none; a damaged one is one clear line."""
        return readback.manifest(self.manifest_path)

    # -- room for the last word on a full disk ------------------------------------------------

    @contextlib.contextmanager
    def room_reserved(self) -> Iterator[None]:
        """Hold a small file for the body, which `free_reserve` deletes on a full disk so
        that the manifest can still be marked `interrupted` there."""
        path = self.root / RESERVE
        size = max(RESERVE_MIN_BYTES, 2 * _size(self.manifest_path))
        try:
            with open(path, "wb") as f:
                f.write(b"\0" * size)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise storage_full(exc, path) or exc from None
        try:
            yield
        finally:
            self.free_reserve()

    def free_reserve(self) -> None:
        (self.root / RESERVE).unlink(missing_ok=True)

    # -- JSONL files --------------------------------------------------------------------------

    def repair(self) -> list[str]:
        """Before a resume: keep every good line of episodes.jsonl and transcripts.jsonl and
        move the others aside (a crash's torn tail into `.torn`, other bad lines into `.bad`).

        Returns one note per file changed, for the user.
        """
        notes = []
        for path in (self.episodes_path, self.transcripts_path):
            if self.repair_torn_tail(path):
                notes.append(f"cut a torn last line off {path.name} (kept in {path.name}.torn)")
            moved = self.move_bad_lines(path)
            if moved:
                shown = ", ".join(map(str, moved[:5])) + (", ..." if len(moved) > 5 else "")
                notes.append(f"moved {len(moved)} unreadable line(s) of {path.name} "
                             f"({shown}) into {path.name}.bad")
        return notes

    def repair_torn_tail(self, path: Path | None = None) -> int:
        """Cut a torn last line (a crash mid-write) off `path` so appends start clean.

        The cut bytes are kept in `<name>.torn` rather than thrown away. Returns their count.
        A last line that lacks only its newline is a good line: it gets the newline.
        """
        path = Path(path or self.episodes_path)
        lines = read_lines(path, _parser(path))
        if not lines.unterminated:
            return 0
        if lines.torn is None:
            append_lines(path, b"\n")
            return 0
        raw = lines.torn.raw
        append_lines(path.with_name(path.name + ".torn"), raw + b"\n")
        try:
            with open(path, "r+b") as f:
                f.truncate(_size(path) - len(raw))
        except OSError as exc:
            raise storage_full(exc, path) or exc from None
        return len(raw)

    def move_bad_lines(self, path: Path) -> list[int]:
        """Move lines of `path` that are not records of its kind into `<name>.bad`, keeping
        every good line byte for byte (after `repair_torn_tail`). Returns the moved lines."""
        lines = read_lines(path, _parser(path))
        if not lines.bad:
            return []
        moved = {b.number for b in lines.bad}
        aside = path.with_name(path.name + ".bad")
        append_lines(aside, b"".join(b.raw + b"\n" for b in lines.bad))
        kept = [raw for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1)
                if n not in moved and raw.strip()]
        replace_bytes(path, b"".join(raw + b"\n" for raw in kept))
        return sorted(moved)

    def append_episode(self, result: EpisodeResult) -> None:
        append_jsonl(self.episodes_path, result.to_json())

    def episode_lines(self) -> Lines[EpisodeResult]:
        """Every line of episodes.jsonl, checked (see `readback`)."""
        return read_lines(self.episodes_path, readback.episode)

    def read_episodes(self) -> tuple[list[EpisodeResult], list[int]]:
        """(good episodes, numbers of the lines that are not: torn or bad)."""
        lines = self.episode_lines()
        skipped = [b.number for b in lines.bad] + ([lines.torn.number] if lines.torn else [])
        return lines.records, sorted(skipped)

    def append_transcript(self, record: dict[str, Any]) -> None:
        append_lines(self.transcripts_path, json_line(record), sync=False)

    def append_transcripts(self, records: Iterable[dict[str, Any]]) -> None:
        """An episode's steps with one write, not fsynced: transcripts are written before
        the episode's line, and a resume drops the lines of episodes that never finished."""
        lines = "".join(json_line(r) for r in records)
        if lines:
            append_lines(self.transcripts_path, lines, sync=False)


def _parser(path: Path) -> Any:
    return {EPISODES: readback.episode, TRANSCRIPTS: readback.transcript}.get(
        path.name, any_object)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
