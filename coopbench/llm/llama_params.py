"""Load llama.cpp models without CPU weight repacking, which crashes on AMX CPUs.

llama-cpp-python 0.3.36 built natively on a CPU with AMX (seen on this project's 2-core Sapphire
Rapids machines) repacks the weights into AMX layouts ("extra buffer types"); the first batch
of more than one token then dies with a segfault in `llama_decode`, and one-token replies are
garbage. Loading with `use_extra_bufts = False` keeps the plain CPU kernels, which are correct
everywhere. The binding exposes no keyword for it, so the default-parameters function is
wrapped while a model loads (and, for `coopbench llm serve`, for the server's lifetime).
"""

from __future__ import annotations

import contextlib
import runpy
import sys
import threading
from collections.abc import Iterator
from typing import Any

_PATCH_LOCK = threading.Lock()


def _install() -> Any:
    from llama_cpp import llama_cpp as low_level

    original = low_level.llama_model_default_params

    def without_repacking() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = without_repacking
    return original


@contextlib.contextmanager
def without_weight_repacking() -> Iterator[None]:
    """Models loaded inside this block use llama.cpp's plain CPU weight layout."""
    from llama_cpp import llama_cpp as low_level

    with _PATCH_LOCK:
        original = _install()
        try:
            yield
        finally:
            low_level.llama_model_default_params = original


def serve() -> None:
    """`python -m coopbench.llm.llama_params ARGS`: llama.cpp's server, loaded as above."""
    _install()
    sys.argv[0] = "llama_cpp.server"
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    serve()
