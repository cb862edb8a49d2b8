"""Motion-planner cache in the user's cache directory (never in site-packages).

overcooked-ai's own `from_pickle_or_compute` writes into its installed package directory and
races when several processes start at once. Here a planner is keyed by a hash of everything it
depends on (terrain, counter goals, package version), loaded from
`<user cache>/coopbench/overcooked/`, and, if missing, computed and published with a file lock
and an atomic rename, so concurrent processes either wait for or read a complete file.

The planners are overcooked-ai objects with no data-only form, so the files are pickles, but
signed (`coopbench.core.signed`): a file is unpickled only if its HMAC matches this user's
secret, and each user's files carry that user's id in their names. A planted, foreign or
damaged file is rebuilt with one notice line; it never runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from coopbench.core.signed import ForeignFile, owner_id, seal, unseal

CACHE_VERSION = "2"  # bump when the pickled objects' shape changes (2: signed files)
_MEMO: dict[str, Any] = {}  # per-process: one planner object per key


def cache_dir() -> Path:
    """`$COOPBENCH_CACHE_DIR/overcooked` if set, else the platform's user cache dir."""
    root = os.environ.get("COOPBENCH_CACHE_DIR")
    if not root:
        from platformdirs import user_cache_dir

        root = user_cache_dir("coopbench")
    return Path(root) / "overcooked"


def _key(kind: str, mdp, extra: Any) -> str:
    from importlib.metadata import version

    payload = json.dumps(
        {
            "kind": kind,
            "terrain": ["".join(row) for row in mdp.terrain_mtx],
            "extra": extra,
            "overcooked": version("overcooked-ai"),
            "cache": CACHE_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _load_or_build(path: Path, build) -> Any:
    said: list[str] = []  # at most one notice per file
    if path.exists():
        obj = _read(path, said)
        if obj is not _MISSING:
            return obj
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():  # another process finished it while we waited
            obj = _read(path, said)
            if obj is not _MISSING:
                return obj
        obj = build()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(seal(obj))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return obj


_MISSING = object()


def _read(path: Path, said: list[str]) -> Any:
    """The planner in `path`, or `_MISSING` (with a notice, unless `said` has one) if it
    must be rebuilt: nothing is unpickled unless this user's key signed it (a planted file
    would run its code)."""
    try:
        return unseal(path.read_bytes())
    except FileNotFoundError:
        return _MISSING
    except (ForeignFile, OSError, pickle.UnpicklingError, EOFError, AttributeError,
            ImportError, TypeError, ValueError) as exc:  # ours, but stale or damaged
        if not said:
            said.append(path.name)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"coopbench: rebuilding the motion-planner cache {path.name}: {reason}",
                  file=sys.stderr)
        return _MISSING


def motion_planner(mdp, counter_goals: list[tuple[int, int]]):
    """overcooked-ai's `MotionPlanner` for this terrain, with plans to face `counter_goals`."""
    from coopbench.envs.overcooked.upstream import MotionPlanner

    goals = sorted(tuple(g) for g in counter_goals)
    key = _key("mp", mdp, goals)
    if key not in _MEMO:
        path = cache_dir() / f"{mdp.layout_name}-mp-{key}-{owner_id()}.pkl"
        _MEMO[key] = _load_or_build(path, lambda: MotionPlanner(mdp, goals))
    return _MEMO[key]


def medium_level_manager(mdp):
    """overcooked-ai's `MediumLevelActionManager` (needed only by the featurized observation)."""
    from coopbench.envs.overcooked.upstream import NO_COUNTERS_PARAMS, MediumLevelActionManager

    key = _key("mlam", mdp, [NO_COUNTERS_PARAMS, mdp.recipe_config])
    if key not in _MEMO:
        path = cache_dir() / f"{mdp.layout_name}-mlam-{key}-{owner_id()}.pkl"
        _MEMO[key] = _load_or_build(
            path, lambda: MediumLevelActionManager(mdp, mlam_params=NO_COUNTERS_PARAMS)
        )
    return _MEMO[key]


def clear_memo() -> None:
    """Forget planners held in this process (tests use it to exercise the disk cache)."""
    _MEMO.clear()
