"""Build a run's report folder from its summary and plots, and tell when one is stale.

`coopbench report RUN --format html` and `coopbench view RUN` come here after writing the
report files and plots of `report` (report.md, summary.json, plots/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError
from coopbench.reporting.viewer import site
from coopbench.runner.store import RunStore


def build(run_dir: Path, summary: dict[str, Any], data: Any, plots: list[Path], *,
          frames: dict[str, str] | None = None) -> Path:
    """Write `<run>/report/` and return its index.html.

    `frames`: episode page name (`model.episode_slug`) -> a GIF of it, made by the runner's
    replay (`runner.replay.episode_gifs`), since reporting itself runs no env.
    """
    run_dir = Path(run_dir)
    manifest = RunStore(run_dir).read_manifest()
    if manifest is None:
        raise CoopbenchError(f"{run_dir} has no manifest.json: not a run directory")
    return site.build_site(run_dir, summary, data, manifest, plots, frames or {})


def is_stale(run_dir: Path) -> bool:
    """No folder yet, or an input (manifest, episodes, transcripts, calls) changed since."""
    return site.is_stale(Path(run_dir))
