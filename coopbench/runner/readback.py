"""Reading back what a run wrote: every line and the manifest are checked before use.

A run directory outlives the process that wrote it, and people edit, copy, truncate and
half-restore them. A line is *bad* when it is not UTF-8, not JSON, or not the shape its file
holds (an episode record, a transcript step); a *torn* line is a bad last line without its
newline, which is what a crash mid-write leaves. Readers that only look (`report`) stop at the
first bad line with `file:line: why`, and skip a torn tail with a note; writers that resume
(`run`, `matrix`) keep every good line and move the bad ones aside (see `RunStore.repair`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import BadJson, decode_json, json_kind
from coopbench.core.saved import describe
from coopbench.core.types import EpisodeResult

T = TypeVar("T")


def episode(data: Any) -> EpisodeResult:
    if not isinstance(data, dict):
        raise ValueError(f"not an episode record (a JSON {json_kind(data)}, not an object)")
    return EpisodeResult.from_json(data)


class TranscriptStep(BaseModel):
    """The keys a resume needs of a transcript line (the rest is free-form)."""

    model_config = ConfigDict(extra="allow")
    cell: str
    episode: int


def transcript(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"not a transcript step (a JSON {json_kind(data)}, not an object)")
    TranscriptStep.model_validate(data)
    return data


# -- manifest.json ------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Spend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class _Skipped(_Loose):
    env: str
    planner: str
    reason: str


class _Plan(_Loose):
    skipped: list[_Skipped] = Field(default_factory=list)


class _SpecHead(_Loose):
    name: str | None = None
    command: str | None = None


class ManifestShape(_Loose):
    """What coopbench reads of a manifest; other keys are provenance and pass through."""

    created: str
    spec: _SpecHead
    kind: str | None = None
    status: str | None = None
    status_detail: str | None = None
    fingerprint: str | None = None
    fingerprint_parts: dict[str, Any] = Field(default_factory=dict)
    invocations: list[dict[str, Any]] = Field(default_factory=list)
    spend_abandoned: _Spend = Field(default_factory=_Spend)
    plan: _Plan | None = None


def manifest(path: Path) -> dict[str, Any] | None:
    """`path` as a checked manifest dict, None if absent; anything else is one line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CoopbenchError(f"cannot read {path}: {exc.strerror}") from None
    hint = "restore it, or use a new run directory"
    try:
        data = decode_json(raw)
    except BadJson as exc:
        where = f"{path}:{exc.position[0]}:{exc.position[1]}" if exc.position else str(path)
        raise CoopbenchError(f"{where}: not valid JSON ({exc.problem}); {hint}") from None
    if not isinstance(data, dict):
        raise CoopbenchError(
            f"{path}: not a coopbench manifest (a JSON {json_kind(data)}, not an object); {hint}"
        )
    try:
        ManifestShape.model_validate(data)
    except ValidationError as exc:
        why = describe(exc)
        raise CoopbenchError(f"{path}: not a coopbench manifest ({why}); {hint}") from None
    return data
