"""Running a documentation page's code: its fenced blocks and its shell commands.

Shared by the doc tests that build a plug-in from a guide (adding an env, adding an LLM
backend), so each reads a page the same way.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of a Markdown page."""
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def only(blocks: list[tuple[str, str]], lang: str, marker: str, page: str) -> str:
    """The one block of `lang` holding `marker` (the test fails if there are none or many)."""
    found = [code for kind, code in blocks if kind == lang and marker in code]
    assert len(found) == 1, f"expected one ```{lang} block with {marker!r} in {page}"
    return found[0]


def run(args: list[str], cwd: Path, env: dict[str, str],
        quiet: bool = False) -> subprocess.CompletedProcess:
    """Run one command of the page; it must succeed (and, with `quiet`, print no stderr)."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{shlex.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    if quiet:
        assert not done.stderr.strip(), f"{shlex.join(args)} said:\n{done.stderr}"
    return done
