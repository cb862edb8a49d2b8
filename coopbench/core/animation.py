"""Episode animations: collect `env.render()` frames and write them as a GIF (headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from coopbench.core.errors import CoopbenchError


def write_gif(frames: Sequence[np.ndarray], path: Path | str, *, fps: float = 2.0) -> Path:
    """Write RGB uint8 frames (H×W×3, all the same size) as a looping GIF."""
    if not frames:
        raise CoopbenchError("no frames to write: the env rendered nothing")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CoopbenchError(f"cannot create {path.parent}: {exc.strerror}") from None
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    duration_ms = int(1000 / fps)
    # Hold the last frame so the outcome is readable before the loop restarts.
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 3]
    try:
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=durations, loop=0,
            optimize=True,
        )
    except OSError as exc:
        raise CoopbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
