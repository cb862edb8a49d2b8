"""Motion-planner cache in the user's cache directory (never in site-packages).

overcooked-ai's own `from_pickle_or_compute` writes into its installed package directory and
races when several processes start at once. Here a planner is keyed by a hash of everything it
depends on (terrain, counter goals, package version), loaded from
`<user cache>/coopbench/overcooked/`, and, if missing, computed and published with a file lock
and an atomic rename, so concurrent processes either wait for or read a complete file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

CACHE_VERSION = "1"  # bump when the pickled objects' shape changes
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
    if path.exists():
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except Exception:  # a truncated or stale file: rebuild it below
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.exists():  # another process finished it while we waited
            try:
                with path.open("rb") as f:
                    return pickle.load(f)
            except Exception:
                path.unlink(missing_ok=True)
        obj = build()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return obj


def motion_planner(mdp, counter_goals: list[tuple[int, int]]):
    """overcooked-ai's `MotionPlanner` for this terrain, with plans to face `counter_goals`."""
    from coopbench.envs.overcooked.upstream import MotionPlanner

    goals = sorted(tuple(g) for g in counter_goals)
    key = _key("mp", mdp, goals)
    if key not in _MEMO:
        path = cache_dir() / f"{mdp.layout_name}-mp-{key}.pkl"
        _MEMO[key] = _load_or_build(path, lambda: MotionPlanner(mdp, goals))
    return _MEMO[key]


def medium_level_manager(mdp):
    """overcooked-ai's `MediumLevelActionManager` (needed only by the featurized observation)."""
    from coopbench.envs.overcooked.upstream import NO_COUNTERS_PARAMS, MediumLevelActionManager

    key = _key("mlam", mdp, [NO_COUNTERS_PARAMS, mdp.recipe_config])
    if key not in _MEMO:
        path = cache_dir() / f"{mdp.layout_name}-mlam-{key}.pkl"
        _MEMO[key] = _load_or_build(
            path, lambda: MediumLevelActionManager(mdp, mlam_params=NO_COUNTERS_PARAMS)
        )
    return _MEMO[key]


def clear_memo() -> None:
    """Forget planners held in this process (tests use it to exercise the disk cache)."""
    _MEMO.clear()
