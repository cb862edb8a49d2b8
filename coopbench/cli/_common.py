"""Console and output helpers shared by the CLI's command modules."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from coopbench.core.registry import set_problem_reporter

console = Console()
err_console = Console(stderr=True)
set_problem_reporter(  # a plug-in that failed to load: one red line, not a Python warning
    lambda line: err_console.print(f"[red]{shown(line)}", highlight=False, soft_wrap=True))

# C0 and C1 controls, DEL, and the Unicode controls that reorder or hide text on a terminal
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: object) -> str:
    """`text` with every control character written out (`\\x1b`, `\\n`, `\\u202e`), so a
    terminal shows it instead of obeying it (clear screen, set title, hyperlinks...)."""
    return _CONTROLS.sub(lambda m: _NAMED.get(m[0]) or _code(m[0]), str(text))


def shown(text: object) -> str:
    """Text that did not come from coopbench (server bodies and model names, LLM replies, ids
    and labels from spec and run files), made safe to print through rich with markup on:
    control characters written out (`visible`) and rich markup escaped, on a terminal and
    piped alike. Every print of such text goes through here."""
    return escape(visible(text))


def _code(char: str) -> str:
    point = ord(char)
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so `| jq` works."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
