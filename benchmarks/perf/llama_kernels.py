"""Repacked vs plain llama.cpp CPU kernels: prompt evaluation on the installed build.

Run: .venv/bin/python benchmarks/perf/llama_kernels.py [--repeats 3]

The same ~800-token prompt is evaluated from an empty KV cache by two copies of the embedded
model loaded in this process: one with llama.cpp's defaults (weights repacked into the
CPU_REPACK buffer, what coopbench loads since the AMX-free build), one with the extra buffer
types off (`use_extra_bufts = false`, the plain kernels coopbench loaded before). Prints the
host's CPU model and the flags llama.cpp was compiled with, both rates and their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

PROMPT = (Path(__file__).with_name("llm_local.py").read_text(encoding="utf-8") * 2)[:3200]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def prompt_rate(plain: bool, threads: int, repeats: int) -> tuple[float, int]:
    """Best prompt-evaluation tokens/s over `repeats` cold evaluations."""
    from llama_cpp import Llama

    from coopbench.llm import llama_params
    from coopbench.llm.model_files import assemble

    original = llama_params._install() if plain else None
    try:
        llama = Llama(model_path=str(assemble()), n_ctx=2048, n_batch=512, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    finally:
        if original is not None:
            from llama_cpp import llama_cpp as low_level

            low_level.llama_model_default_params = original
    tokens = llama.tokenize(PROMPT.encode("utf-8"))
    best = 0.0
    try:
        for _ in range(repeats):
            llama.reset()
            llama._ctx.kv_cache_clear()
            start = time.perf_counter()
            llama.eval(tokens)
            best = max(best, len(tokens) / (time.perf_counter() - start))
    finally:
        llama.close()
    return best, len(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    from coopbench.llm.llama_params import system_info

    print(f"cpu      {cpu_model()} ({os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.1f})")
    print(f"llama    {system_info().strip()}")
    repacked, n = prompt_rate(False, args.threads, args.repeats)
    plain, _ = prompt_rate(True, args.threads, args.repeats)
    print(f"prompt   repacked {repacked:7.1f} tokens/s   plain kernels {plain:7.1f} tokens/s   "
          f"({n} tokens, {args.threads} threads, best of {args.repeats})")
    print(f"ratio    repacked / plain = {repacked / plain:.2f}x")


if __name__ == "__main__":
    main()
