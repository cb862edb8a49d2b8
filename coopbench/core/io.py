"""Crash-safe JSON files and checked JSONL lines, shared by the run store, credit and critics.

A JSON file is replaced atomically (temp file + fsync + rename), so a reader sees the old or
the new file, never half. A JSONL line is appended whole and fsynced; on a full disk the
partial write is cut back off and `StorageFull` raised. Everything written passes through
`secrets.redact`. Reading checks every line: a *bad* line is not UTF-8, not JSON or not the
shape its file holds; a *torn* line is a bad last line without its newline (a crash mid-write).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from coopbench.core.errors import CoopbenchError, storage_full
from coopbench.core.saved import BadJson, decode_json, describe
from coopbench.core.secrets import redact

T = TypeVar("T")


def make_dir(path: Path) -> Path:
    """Make a directory (and parents) we can write into, or fail with one clear line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CoopbenchError(f"cannot write to output directory {path}: {exc.strerror}") from None
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so readers see the old or the new file, never half."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    replace_bytes(Path(path), text.encode("utf-8"))


def append_lines(path: Path, data: str | bytes, *, sync: bool = True) -> None:
    """Append whole lines; on a full disk, cut a partial write back off and raise
    `StorageFull`, so the file never holds half a line for the next append to run into."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:  # unbuffered: a short write is seen, not hidden in a buffer
                    view = view[os.write(fd, view):]
                if sync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_full(exc, path) or exc from None


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (secrets redacted), flushed and fsynced before returning."""
    append_lines(path, redact(json.dumps(record, sort_keys=True, default=str)) + "\n")


def json_line(record: dict[str, Any]) -> str:
    return redact(json.dumps(record, sort_keys=True, default=str)) + "\n"


def replace_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace a JSONL file with `records`, atomically (secrets redacted)."""
    replace_bytes(path, "".join(json_line(r) for r in records).encode("utf-8"))


def replace_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (temp file + fsync + rename), keeping its mode."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        full = storage_full(exc, path)
        if full is not None:
            raise full from None
        raise


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BadLine:
    number: int  # 1-based
    reason: str
    raw: bytes  # without its newline


@dataclass
class Lines(Generic[T]):
    """The good records of a JSONL file, and what was wrong with the rest."""

    records: list[T] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)  # mid-file lines that cannot be used
    torn: BadLine | None = None  # a bad last line without its newline (a crash mid-write)
    unterminated: bool = False  # the file does not end with a newline

    def check(self, path: Path) -> None:
        """Raise the first bad line as one `CoopbenchError` naming `path:line`."""
        if self.bad:
            first = self.bad[0]
            more = f" (and {len(self.bad) - 1} more bad line(s))" if len(self.bad) > 1 else ""
            raise CoopbenchError(
                f"{path}:{first.number}: {first.reason}{more}; resuming the run (`coopbench "
                f"matrix`/`run` on it again) keeps the good lines and moves bad ones into "
                f"{path.name}.bad"
            )


def parse_line(raw: bytes, parse: Callable[[Any], T]) -> T:
    """One line -> a record, or ValueError saying why not."""
    try:
        data = decode_json(raw)
    except BadJson as exc:
        if exc.not_utf8:
            raise ValueError("not UTF-8 text") from None
        column = f", column {exc.position[1]}" if exc.position else ""
        raise ValueError(f"not valid JSON ({exc.problem}{column})") from None
    try:
        return parse(data)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None


def read_lines(path: Path, parse: Callable[[Any], T]) -> Lines[T]:
    """Every line of `path` through `parse`; a file that cannot be opened is one line."""
    out: Lines[T] = Lines()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise CoopbenchError(f"cannot read {path}: {exc.strerror}") from None
    out.unterminated = bool(data) and not data.endswith(b"\n")
    lines = data.split(b"\n")
    if not out.unterminated:
        lines.pop()  # the empty string after the final newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            out.records.append(parse_line(raw, parse))
        except ValueError as exc:
            bad = BadLine(number, str(exc), raw)
            if out.unterminated and number == len(lines):
                out.torn = bad
            else:
                out.bad.append(bad)
    return out


def any_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {json_kind(data)}, not an object")
    return data


def json_kind(data: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if data is None else names.get(type(data), type(data).__name__)


@dataclass
class JsonlRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: list[int] = field(default_factory=list)  # 1-based line numbers skipped


def read_jsonl(path: Path) -> JsonlRead:
    """Every JSON-object line of `path`; unreadable lines are listed, not fatal."""
    lines = read_lines(Path(path), any_object)
    torn = [b.number for b in lines.bad] + ([lines.torn.number] if lines.torn else [])
    return JsonlRead(lines.records, torn)
