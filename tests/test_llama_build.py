"""The llama.cpp build: no AMX code, repacked kernels on, and batches that agree with single tokens.

`make install` builds llama-cpp-python through `tools/llama_wheel.py`; these tests check the
binary that is actually installed, so a build that slipped back to `-march=native` (AMX
compiled in on Sapphire Rapids) or lost the repacked kernels fails here, and so does one
whose multi-token batches (the case that segfaulted) compute different logits than one token
at a time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from coopbench.llm import llama_params
from coopbench.llm.model_files import assemble

ROOT = Path(__file__).resolve().parent.parent


def _wheel_tool():
    spec = importlib.util.spec_from_file_location("llama_wheel", ROOT / "tools" / "llama_wheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_build_has_no_amx_and_repacks_weights():
    info = llama_params.system_info()
    print(f"llama.cpp system info: {info}")
    features = llama_params.compiled_features(info)
    assert features, f"no features parsed from {info!r}"
    assert not llama_params.amx_compiled_in(info), f"AMX kernels compiled in: {info}"
    assert features.get("REPACK") is True, f"weight repacking is off: {info}"
    assert features.get("AVX2") is True, f"no AVX2 kernels: {info}"


def test_amx_detection_reads_the_feature_line():
    sapphire_native = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |"
    portable = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | REPACK = 1 |"
    assert llama_params.amx_compiled_in(sapphire_native)
    assert not llama_params.amx_compiled_in(portable)


@pytest.mark.parametrize("cpu, expect_512", [
    ("flags : fpu sse2 avx avx2 fma f16c bmi2", False),
    ("flags : fpu avx avx2 fma f16c bmi2 avx512f avx512_vnni amx_int8 amx_tile", True),
])
def test_cmake_args_are_explicit_and_never_amx(cpu, expect_512):
    tool = _wheel_tool()
    args = tool.cmake_args(tool.cpu_flags(cpu)).split()
    assert "-DGGML_NATIVE=OFF" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    assert not any(a.startswith("-DGGML_AMX") and a.endswith("=ON") for a in args)
    for option in ("AVX", "AVX2", "FMA", "F16C", "BMI2"):
        assert f"-DGGML_{option}=ON" in args  # explicit: off by default under SOURCE_DATE_EPOCH
    assert ("-DGGML_AVX512=ON" in args) is expect_512


def test_multi_token_batch_matches_single_token_evaluation():
    """The batch that crashed with AMX buffers gives the logits of token-by-token evaluation."""
    from llama_cpp import Llama

    with llama_params.safe_weight_layout():
        llama = Llama(model_path=str(assemble()), n_ctx=256, n_batch=64, logits_all=True,
                      n_threads=2, n_threads_batch=2, verbose=False)
    try:
        tokens = llama.tokenize(b"Alice puts an onion into the pot while Bob fetches a dish.")
        assert len(tokens) > 8
        llama.eval(tokens)  # one batch of all tokens
        batched = np.array(llama.scores[: len(tokens)], dtype=np.float32)
        llama.reset()
        llama._ctx.kv_cache_clear()
        for token in tokens:
            llama.eval([token])  # one token per batch
        single = np.array(llama.scores[: len(tokens)], dtype=np.float32)
    finally:
        llama.close()
    assert np.isfinite(batched).all() and np.isfinite(single).all()
    # Batched and one-token kernels quantise activations differently: logits differ by a few
    # tenths (0.48 at most here, the same with the plain kernels); broken kernels give garbage.
    assert np.abs(batched - single).max() < 1.0, np.abs(batched - single).max()
    def probs(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    total_variation = 0.5 * np.abs(probs(batched) - probs(single)).sum(axis=1)
    assert total_variation.max() < 0.1, total_variation.round(3)
    assert (batched.argmax(axis=1) == single.argmax(axis=1)).mean() >= 0.8
