"""Weight repacking on, unless this llama.cpp build carries AMX kernels (which crash).

The project's install step (`tools/llama_wheel.py`) builds llama.cpp without AMX code and with
the AVX2/AVX-512 repacked Q4_K kernels, so models load with llama.cpp's defaults: weights
repacked into the CPU_REPACK buffer, several times faster prompt evaluation than the plain
layout. A llama-cpp-python built some other way (`-march=native` on a Sapphire Rapids host)
may have AMX compiled in; there the first batch of more than one token segfaults in
`llama_decode` (llama.cpp issue 20824). Only for such a build are the extra buffer types
switched off (`use_extra_bufts = False`, the plain kernels), with one notice, because the
binding has no switch for AMX alone.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

_PATCH_LOCK = threading.Lock()


@functools.cache
def system_info() -> str:
    """llama.cpp's feature line ("CPU : SSE3 = 1 | AVX2 = 1 | ... | REPACK = 1 |")."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def compiled_features(info: str) -> dict[str, bool]:
    """`NAME = 1` / `NAME = 0` pairs of a system-info line."""
    return {name: value != "0" for name, value in re.findall(r"([A-Z0-9_]+) = (\d+)", info)}


def amx_compiled_in(info: str | None = None) -> bool:
    features = compiled_features(system_info() if info is None else info)
    return any(on for name, on in features.items() if name.startswith("AMX"))


def _install() -> Any:
    from llama_cpp import llama_cpp as low_level

    original = low_level.llama_model_default_params

    def without_repacking() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = without_repacking
    return original


@functools.cache
def _warn_once() -> None:
    print("coopbench: this llama-cpp-python has AMX kernels compiled in (known to crash); "
          "loading with plain CPU kernels (slow). Rebuild it with `make install` in a fresh "
          "venv for the fast repacked kernels.", file=sys.stderr)


@contextlib.contextmanager
def safe_weight_layout() -> Iterator[None]:
    """Models loaded inside this block avoid AMX buffers; a no-op on AMX-free builds."""
    if not amx_compiled_in():
        yield
        return
    from llama_cpp import llama_cpp as low_level

    _warn_once()
    with _PATCH_LOCK:
        original = _install()
        try:
            yield
        finally:
            low_level.llama_model_default_params = original
