"""One writer per run directory: an exclusive lock held for the whole run.

`coopbench run` and `coopbench matrix` take it before they write anything and hold it until
they return. Their process-pool and Ray workers never take it: the process that holds it is
the one that started them and outlives them (transcripts have their own lock). The lock is an
flock (through filelock) on `<run>/.run.lock`, so the OS drops it when its holder dies,
however it dies: a SIGKILLed run never blocks its resume, and a forked worker that outlives
it for a moment does not hold it either (filelock >= 4 closes an inherited lock descriptor in
the child). The holder's pid, host and start time go into `<run>/.run.holder`, and a second
writer is refused with one line naming them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from coopbench.core.errors import CoopbenchError

LOCK = ".run.lock"
HOLDER = ".run.holder"


class RunDirBusy(CoopbenchError):
    """Another coopbench process is writing into this run directory."""


def holder(root: Path) -> str:
    """Who holds the lock of `root`, as words (best effort: the file is advisory)."""
    try:
        info = json.loads((root / HOLDER).read_text("utf-8"))
        return (f"pid {int(info['pid'])} on {info['host']}, `{info['command']}` since "
                f"{info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextlib.contextmanager
def run_lock(root: Path | str, command: str) -> Iterator[None]:
    """Hold `root`'s lock for the body, or raise `RunDirBusy` at once."""
    root = Path(root)
    lock = FileLock(str(root / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunDirBusy(
            f"{root} is in use by another coopbench process ({holder(root)}); wait for it "
            "to finish, or use another --out"
        ) from None
    except OSError as exc:
        raise CoopbenchError(f"cannot lock {root / LOCK}: {exc.strerror}") from None
    try:
        _say_who(root, command)
        yield
    finally:
        with contextlib.suppress(OSError):
            (root / HOLDER).unlink()
        lock.release()


def _say_who(root: Path, command: str) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with contextlib.suppress(OSError):  # only a courtesy to the next writer: a full disk
        (root / HOLDER).write_text(json.dumps(info) + "\n", "utf-8")  # must not stop the run
