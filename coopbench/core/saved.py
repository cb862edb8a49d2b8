"""Reading back files that coopbench saved earlier (checkpoints, JSON configs), checked.

Such files get copied, truncated, renamed and mixed up with other projects' files. torch
raises a dozen exception types for a file that is not a checkpoint, with messages of four to
six lines (some recommending unsafe loading); here each becomes one `CoopbenchError` naming
the file and what it is not, and the shape of what did load is checked with pydantic before
anything indexes into it.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from coopbench.core.errors import CoopbenchError

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """A pydantic error as `missing key 'cell'` or `key 'seed': Input should be ...`."""
    error = exc.errors()[0]
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "missing":
        return f"missing key {key!r}"
    return f"key {key!r}: {error['msg']}" if key else error["msg"]


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:200]
    return type(exc).__name__


def _present(path: Path, what: str) -> None:
    try:
        if path.is_dir():
            raise CoopbenchError(f"cannot read {what} {path}: it is a directory")
        if path.stat().st_size == 0:
            raise CoopbenchError(f"cannot read {what} {path}: the file is empty")
    except FileNotFoundError:
        raise CoopbenchError(f"no {what} at {path}") from None
    except OSError as exc:
        raise CoopbenchError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_torch(path: Path | str, what: str, map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`, or one line saying why `path` is not a `what`."""
    import torch

    path = Path(path)
    _present(path, what)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise here
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CoopbenchError(f"cannot read {what} {path}: not a checkpoint written by "
                             f"coopbench (torch: {_torch_reason(exc)})") from None


def _torch_reason(exc: BaseException) -> str:
    """The informative part of a torch.load failure (its weights-only message is a page)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        return detail[0].strip()[:200] if detail else "refused by the weights-only unpickler"
    return f"{type(exc).__name__}: {first_line(exc)}"


class BadJson(ValueError):
    """Bytes that are not JSON: `problem` says why, `position` is (line, column) of a syntax
    error. Every reader (JSONL lines, manifests, saved files) decodes through `decode_json`
    and words this for its own file."""

    def __init__(self, problem: str, position: tuple[int, int] | None = None) -> None:
        super().__init__(problem)
        self.problem, self.position = problem, position

    @property
    def not_utf8(self) -> bool:
        return self.problem == "not UTF-8 text"


def decode_json(raw: bytes) -> Any:
    """`raw` (UTF-8 JSON) decoded, or `BadJson`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadJson(exc.msg, (exc.lineno, exc.colno)) from None
    except RecursionError:
        raise BadJson("nested too deeply") from None


def read_json(path: Path | str, what: str) -> Any:
    """A JSON file's content, or one line naming the file (and line:column) and the problem."""
    path = Path(path)
    _present(path, what)
    try:
        return decode_json(path.read_bytes())
    except BadJson as exc:
        if exc.position:
            line, column = exc.position
            raise CoopbenchError(f"cannot read {what} {path}:{line}:{column}: not valid JSON "
                                 f"({exc.problem})") from None
        problem = exc.problem if exc.not_utf8 else f"JSON {exc.problem}"
        raise CoopbenchError(f"cannot read {what} {path}: {problem}") from None
    except OSError as exc:
        raise CoopbenchError(f"cannot read {what} {path}: {exc.strerror}") from None


def validated(model: type[M], data: Any, path: Path | str, what: str) -> M:
    """`data` checked against `model`, or one line naming the first key that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CoopbenchError(f"cannot read {what} {path}: {describe(exc)}") from None
