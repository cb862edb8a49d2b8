"""Which torch device a training run uses: `auto` measures instead of assuming CUDA is faster.

Why: a GPU is not faster for every workload. coopbench trains small networks (a critic MLP,
a 64-wide PPO actor-critic next to CPU-stepped envs), where kernel launches and host-device
copies can cost more than the arithmetic saves (issue 23: on an H200 host PPO ran at half the
CPU's speed on CUDA, and `auto` picked CUDA). So `auto` times a few steps of the caller's own
workload on the CPU and on CUDA (`probe(device) -> seconds per unit of work`) and takes CUDA
only when it is faster by `MARGIN`; a probe that fails on CUDA falls back to the CPU. Without
a CUDA device nothing is measured and the CPU is used, as before. The choice and its
measurements are a `DeviceChoice` that callers record in the run's files.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

MARGIN = 1.15  # CUDA must beat the CPU by this factor (guards against probe noise)

Probe = Callable[[torch.device], float]


@dataclass
class DeviceChoice:
    """The device a run uses, what was asked for, why, and the probe's timings."""

    device: torch.device
    requested: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)  # probe time per unit, by device

    def to_json(self) -> dict[str, Any]:
        return {"device": str(self.device), "requested": self.requested, "reason": self.reason,
                "probe_seconds": dict(self.seconds), "margin": MARGIN}

    def describe(self) -> str:
        return f"{self.device} ({self.reason})"


def choose(requested: str, probe: Probe, explicit: Callable[[str], torch.device],
           cuda_available: Callable[[], bool] | None = None) -> DeviceChoice:
    """`explicit(requested)` for a named device; for `auto`, the faster one by `probe`.

    `explicit` is the caller's parser for named devices (it owns the error messages);
    `cuda_available` (default `torch.cuda.is_available`) lets the rule be tested without a GPU.
    """
    if requested != "auto":
        return DeviceChoice(explicit(requested), requested, "asked for")
    if not (cuda_available or torch.cuda.is_available)():
        return DeviceChoice(torch.device("cpu"), requested, "no CUDA device")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    try:  # the probes may sample: keep the run's random streams where they were
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            cpu_s = float(probe(cpu))
            cuda_s = float(probe(cuda))
    except (RuntimeError, AssertionError, OSError) as exc:  # CUDA init or kernel failures
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return DeviceChoice(cpu, requested, f"the CUDA probe failed ({first}); using the CPU")
    timings = {"cpu": cpu_s, "cuda": cuda_s}
    if cuda_s > 0 and cpu_s >= MARGIN * cuda_s:
        return DeviceChoice(cuda, requested,
                            f"measured: CUDA {cpu_s / cuda_s:.1f}x the CPU's speed", timings)
    speed = cpu_s / cuda_s if cuda_s > 0 else float("inf")
    return DeviceChoice(cpu, requested,
                        f"measured: CUDA only {speed:.2f}x the CPU's speed", timings)


def sync(device: torch.device) -> None:
    """Wait for queued kernels (timings on CUDA are otherwise of the launches alone)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(work: Callable[[], Any], device: torch.device, calls: int,
                  warmup: int = 2) -> float:
    """Seconds per call of `work` after `warmup` untimed calls (CUDA init, lazy state)."""
    for _ in range(warmup):
        work()
    sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        work()
    sync(device)
    return (time.perf_counter() - start) / max(calls, 1)


def host_cpu() -> str:
    """The CPU model as `lscpu` names it (benchmarks print it next to their figures)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return f"unknown CPU, {os.cpu_count()} CPUs"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", "unknown CPU").strip()
    family, model = fields.get("CPU family", "?").strip(), fields.get("Model", "?").strip()
    return f"{name} (family {family}, model {model}), {os.cpu_count()} CPUs"
