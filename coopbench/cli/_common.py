"""Console and output helpers shared by the CLI's command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so `| jq` works."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
