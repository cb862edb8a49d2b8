"""One writer per output: an exclusive lock that a command holds for as long as it writes.

Every command that writes a run directory (`matrix`, `run`, `credit collect|fit|train`) takes
`run_lock` on it, and the commands that write one file (`critic collect|train`) take
`file_lock` on that file, before they write anything; a second writer is refused at once with
the same one line, naming the holder. The lock is an flock on `<run>/.run.lock`
(`.<name>.lock` beside a file), so the OS drops it when its holder dies, however it dies: a
SIGKILLed run never blocks its resume, and a forked worker that outlives it for a moment does
not hold it either (a forked child closes its inherited copy of the descriptor at once). The
holder's pid, host and start time go into `.run.holder` (`.<name>.holder`).

A lock file may be removed while held (a file lock's on release, a failed start's with its
directory): whoever locks a file checks afterwards that it is still the one at that path, and
otherwise locks the new one, so two writers never hold two different files of one name.

A failed start leaves nothing behind: when the body raises in a directory that was missing or
empty when the lock was taken, before the command called `started` (it begins its real work:
episodes, updates) and while none of the caller's `results` files holds anything, the
directory is removed again (no stray `.run.lock` or half-written manifest to trip over).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from coopbench.core.errors import CoopbenchError

LOCK = ".run.lock"
HOLDER = ".run.holder"
_STARTED: set[Path] = set()  # run directories whose command began its real work


class RunDirBusy(CoopbenchError):
    """Another coopbench process is writing this output."""


def holder(root: Path, holder_file: str = HOLDER) -> str:
    """Who holds the lock of `root`, as words (best effort: the file is advisory)."""
    try:
        info = json.loads((Path(root) / holder_file).read_text("utf-8"))
        return (f"pid {int(info['pid'])} on {info['host']}, `{info['command']}` since "
                f"{info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextlib.contextmanager
def run_lock(root: Path | str, command: str, *, results: Iterable[str] = ()) -> Iterator[None]:
    """Hold directory `root`'s lock for the body (creating `root`), or raise `RunDirBusy`.

    `results`: names of files in `root` that hold a run's results; if the body raises while
    none of them has content and `root` was missing or empty before, `root` is removed (all
    that is in it was put there by this start).
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fresh = not any(root.iterdir())
    except OSError as exc:
        raise CoopbenchError(f"cannot write to output directory {root}: {exc.strerror}") from None
    key = root.resolve()
    _STARTED.discard(key)
    with _held(root / LOCK, root / HOLDER, root, command):
        try:
            yield
        except BaseException:
            if (fresh and key not in _STARTED
                    and not any(_has_content(root / name) for name in results)):
                _remove_start(root)
            raise
        finally:
            _STARTED.discard(key)


def started(root: Path | str) -> None:
    """Say that the command holding `root`'s lock has begun its real work: from now on a
    failure is a run that stopped (kept, resumable), not a start that failed (removed)."""
    _STARTED.add(Path(root).resolve())


@contextlib.contextmanager
def file_lock(path: Path | str, command: str) -> Iterator[None]:
    """Hold the lock of output file `path` (`.<name>.lock` beside it), or raise `RunDirBusy`.

    The lock and holder files are removed on release (they hold nothing), while still held,
    so a later writer can only ever lock a file that is in place.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CoopbenchError(f"cannot write {path}: {exc.strerror}") from None
    lock = path.with_name(f".{path.name}.lock")
    with _held(lock, path.with_name(f".{path.name}.holder"), path, command, unlink=True):
        yield


@contextlib.contextmanager
def _held(lock_path: Path, holder_path: Path, target: Path, command: str, *,
          unlink: bool = False) -> Iterator[None]:
    try:
        fd = _flock(lock_path)
    except BlockingIOError:
        raise RunDirBusy(
            f"{target} is in use by another coopbench process "
            f"({holder(holder_path.parent, holder_path.name)}); wait for it to finish, or use "
            "another --out"
        ) from None
    except OSError as exc:
        raise CoopbenchError(f"cannot lock {lock_path}: {exc.strerror}") from None
    try:
        _say_who(holder_path, command)
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_path.unlink()
        if unlink:  # while held: a process that opened the old file sees it is gone
            with contextlib.suppress(OSError):
                lock_path.unlink()
        _HELD.discard(fd)
        os.close(fd)  # drops the flock


_HELD: set[int] = set()  # descriptors of the locks this process holds


def _flock(path: Path) -> int:
    """An exclusive flock on the file now at `path` (its descriptor), or `BlockingIOError`."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            still_there = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            still_there = False
        except BaseException:
            os.close(fd)
            raise
        if still_there:
            _HELD.add(fd)
            return fd
        os.close(fd)  # its holder removed it meanwhile: lock whatever is there now


def _forget_in_child() -> None:
    """A forked child closes its copies, so the lock goes when its holder goes."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _say_who(path: Path, command: str) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with contextlib.suppress(OSError):  # only a courtesy to the next writer: a full disk
        path.write_text(json.dumps(info) + "\n", "utf-8")  # must not stop the run


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _remove_start(root: Path) -> None:
    """Undo a start that failed in a directory that was missing or empty: all in it is ours."""
    with contextlib.suppress(OSError):
        if root.resolve() != Path.cwd().resolve():
            shutil.rmtree(root)
            return
        for child in root.iterdir():  # `--out .`: empty the directory, keep it
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
