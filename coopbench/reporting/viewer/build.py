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
          frames: bool = False) -> Path:
    """Write `<run>/report/` and return its index.html. `frames`: replay episodes as GIFs."""
    run_dir = Path(run_dir)
    manifest = RunStore(run_dir).read_manifest()
    if manifest is None:
        raise CoopbenchError(f"{run_dir} has no manifest.json: not a run directory")
    gifs: dict[str, str] = {}
    if frames:
        from coopbench.reporting.viewer.frames import episode_gifs

        gifs = episode_gifs(run_dir, manifest, data.episodes)
    return site.build_site(run_dir, summary, data, manifest, plots, gifs)


def is_stale(run_dir: Path) -> bool:
    """No folder yet, or an input (manifest, episodes, transcripts, calls) changed since."""
    return site.is_stale(Path(run_dir))
