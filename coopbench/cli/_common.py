"""Console and output helpers shared by the CLI's command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from coopbench.core.registry import set_problem_reporter

console = Console()
err_console = Console(stderr=True)
set_problem_reporter(  # a plug-in that failed to load: one red line, not a Python warning
    lambda line: err_console.print(f"[red]{escape(line)}", highlight=False, soft_wrap=True))


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so `| jq` works."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
