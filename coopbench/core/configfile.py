"""Reading a spec or config file a person wrote (or mistook for one), with limits.

A gzipped or binary file, a YAML document nested thousands deep, a huge file, or a few lines
of aliases that expand to billions of nodes ("billion laughs") each end in one `ConfigError`
line naming the file, before a decoder, the YAML composer or a validator gets lost in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from coopbench.core.errors import ConfigError

MAX_BYTES = 4 * 1024 * 1024  # a matrix spec is a few kB
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_NODES = 200_000  # values once aliases are expanded


def read_text(path: Path | str, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The file as text, or one line saying why it is not a readable `what`."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"cannot read {what} {path}: larger than {max_bytes // 1024} kB; "
                          "is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "gzip-compressed" if raw[:2] == b"\x1f\x8b" else "binary or another encoding"
        raise ConfigError(f"cannot read {what} {path}: not UTF-8 text (byte {exc.start} of "
                          f"the file; {kind}?)") from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested deeper than `MAX_DEPTH`."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeep(mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def parse_yaml(text: str, path: Path | str, what: str) -> Any:
    """YAML text of `path`, parsed safely, or one line (with line:column when known)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader)
    except _TooDeep as exc:
        raise ConfigError(f"{path}:{exc.line}: {what} nested more than {MAX_DEPTH} levels "
                          "deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    if _exceeds(data, MAX_NODES):
        raise ConfigError(f"cannot read {what} {path}: more than {MAX_NODES:,} values once "
                          "its aliases are expanded")
    return data


def load_yaml(path: Path | str, what: str) -> Any:
    """`read_text` then `parse_yaml`."""
    return parse_yaml(read_text(path, what), path, what)


def _exceeds(data: Any, limit: int) -> bool:
    """Whether `data`, walked as JSON would write it (shared parts once per use), has more
    than `limit` values; stops counting at the limit, so it costs at most that much."""
    stack, count = [data], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return False
