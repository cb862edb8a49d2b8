"""Episode GIFs replayed from a run's records (the report's opt-in frames: rendering is slow).

The runner's job, not reporting's: it builds envs and steps them (reporting runs nothing).

An episode is deterministic given its seed and its joint actions, so the report replays the
actions recorded in transcripts.jsonl in a fresh env with `render_mode="rgb_array"`: no LLM and
no planner run again. The replay recomputes the episode's trajectory digest and only a replay
that matches the recorded one becomes a GIF, so a frame never shows a different episode.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coopbench import envs
from coopbench.core.animation import write_gif
from coopbench.core.io import read_lines
from coopbench.core.types import EpisodeResult
from coopbench.episode import _state_bytes
from coopbench.runner import readback
from coopbench.runner.store import RunStore


def _env_kwargs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: dict(e.get("kwargs") or {}) for e in manifest.get("spec", {}).get("envs", [])
            if isinstance(e, dict) and "id" in e}


def replay(env_id: str, kwargs: dict[str, Any], max_steps: int | None, seed: int,
           joints: list[dict[str, str]]) -> tuple[list[Any], str]:
    """(frames, trajectory digest) of `joints` played from `seed`'s start."""
    env = envs.make(env_id, render_mode="rgb_array", **kwargs)
    try:
        if max_steps is not None:
            env.max_steps = max_steps
        env.reset(seed=seed)
        trace = hashlib.sha256(_state_bytes(env))
        frames = [env.render()]
        for joint in joints:
            actions = {a: env.parse(a, text) for a, text in joint.items()}
            env.step(actions)
            trace.update(json.dumps(joint, sort_keys=True).encode())
            trace.update(_state_bytes(env))
            frames.append(env.render())
        return frames, trace.hexdigest()[:16]
    finally:
        env.close()


def episode_gifs(run_dir: Path, manifest: dict[str, Any], episodes: list[EpisodeResult],
                 name: Callable[[EpisodeResult], str]) -> dict[str, str]:
    """name(episode) -> GIF path (in a temporary folder) for each episode that replays to its
    recorded trajectory digest."""
    kwargs = _env_kwargs(manifest)
    max_steps = (manifest.get("spec", {}).get("caps") or {}).get("max_steps")
    steps: dict[tuple[str, int], list[dict[str, str]]] = {}
    for record in read_lines(RunStore(run_dir).transcripts_path, readback.transcript).records:
        key = (record["cell"], record["episode"])
        if record.get("step", 0) == 0:
            steps[key] = []
        steps.setdefault(key, []).append(record.get("joint") or {})
    out_dir = Path(tempfile.mkdtemp(prefix="coopbench-frames-"))
    gifs = {}
    for e in episodes:
        joints = steps.get((e.cell, e.episode))
        if e.error is not None or not joints:
            continue
        try:
            frames, digest = replay(e.env, kwargs.get(e.env, {}), max_steps, e.seed, joints)
        except Exception:  # an env that cannot render or parse its own actions: no GIF
            continue
        if e.trajectory and digest != e.trajectory:
            continue
        slug = name(e)
        gifs[slug] = str(write_gif(frames, out_dir / f"{slug}.gif"))
    return gifs
