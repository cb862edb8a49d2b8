"""User-facing errors.

Anything raised as a `CoopbenchError` is a problem with the user's input or environment
(an unknown id, a malformed file, an unreachable server): the CLI prints its message as one
line and exits with status 2. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os


class CoopbenchError(Exception):
    """A problem the user can fix; shown as one line, exit status 2."""

    exit_status = 2


class CoopbenchWarning(UserWarning):
    """Something the user should know that does not stop the command (a cache that cannot be
    used costs calls, not the run); the CLI shows it as one line."""


class Interrupted(CoopbenchError):
    """The user pressed Ctrl-C; the message says what was kept. Exit status 130."""

    exit_status = 130


class UnknownIdError(CoopbenchError, KeyError):
    """An environment, planner or other registered id does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(CoopbenchError, ValueError):
    """A configuration file or option has a bad key or value."""


class CapsError(ConfigError):
    """A registration declares capabilities (`caps=`) with an unknown key or a bad value;
    raised by `register`, so the author sees it before any run."""


class PluginEnvError(CoopbenchError):
    """An environment breaks the `LanguageEnv` contract (a missing attribute, an alias to no
    action, ...); raised when the id is first made, so the author sees it before an episode."""


class PlannerContractError(CoopbenchError):
    """A planner breaks the contract the runner relies on (a joint action that misses a live
    agent, ...); the message names the planner, the env and the rule."""


class BadScores(CoopbenchError):
    """A model answered a scoring request with something that is not one log-probability per
    candidate. Planners count it as a failed query and decide without the LLM term."""


class StorageFull(CoopbenchError):
    """Results cannot be written (disk full, quota, read-only filesystem): stop at once.

    Carrying on would record every later episode as a failure of its own; stopping keeps the
    run directory resumable once space is freed.
    """


# errno values that mean "the storage refuses writes", as opposed to a bug in our code
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def storage_full(exc: BaseException, path: object) -> StorageFull | None:
    """A `StorageFull` naming `path` if `exc` is a full or read-only disk, else None."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
        return StorageFull(f"cannot write {path}: {exc.strerror or os.strerror(exc.errno)}")
    return None
