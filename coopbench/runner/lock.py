"""The run directory's lock, as `run` and `matrix` take it (see `coopbench.core.runlock`).

They take it before they write anything and hold it until they return. Their process-pool
and Ray workers never take it: the process that holds it is the one that started them and
outlives them (transcripts have their own lock). A start that fails before the episodes
begin (`started`) and before any episode, LLM call or transcript is recorded leaves no
directory behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from coopbench.core import runlock
from coopbench.core.runlock import HOLDER, LOCK, RunDirBusy, holder, started
from coopbench.runner.store import EPISODES, LLM_CALLS, TRANSCRIPTS

RESULTS = (EPISODES, LLM_CALLS, TRANSCRIPTS)


@contextlib.contextmanager
def run_lock(root: Path | str, command: str) -> Iterator[None]:
    """Hold `root`'s lock for the body, or raise `RunDirBusy` at once."""
    with runlock.run_lock(root, command, results=RESULTS):
        yield


__all__ = ["HOLDER", "LOCK", "RESULTS", "RunDirBusy", "holder", "run_lock", "started"]
