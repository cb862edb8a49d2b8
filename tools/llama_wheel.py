"""Build llama-cpp-python once per (version, CPU features, compiler) and print the wheel's path.

Why not a plain `pip install`: the package builds llama.cpp with `GGML_NATIVE=ON`
(`-march=native`), which on AMX CPUs compiles ggml's AMX kernels (known to segfault with
Q4_K_M), and pip's wheel cache ignores `CMAKE_ARGS`, so a wheel built on one host or with other
flags is silently reused. Here the x86 features are set explicitly from this host's CPU flags
(AVX2 and, where present, AVX-512; never AMX; the weight-repacking kernels stay on), and the
wheel is cached under a key of everything that changes the binary. Stdlib only: it runs before
the project is installed.

    python3 tools/llama_wheel.py            # build if needed, print the wheel path
    python3 tools/llama_wheel.py --cmake-args   # print the CMAKE_ARGS only
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ggml CMake option -> the /proc/cpuinfo flag that must be present for it.
X86_FEATURES = {
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_BMI2": "bmi2",
    "GGML_AVX_VNNI": "avx_vnni",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
}
# Compiled-in AMX code is what crashes; keep it out even on CPUs that have AMX.
ALWAYS_OFF = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(flags: set[str]) -> str:
    """Explicit ON/OFF for every option: they default to OFF when SOURCE_DATE_EPOCH is set."""
    options = [f"-D{name}=OFF" for name in ALWAYS_OFF]
    options += [f"-D{name}={'ON' if flag in flags else 'OFF'}"
                for name, flag in X86_FEATURES.items()]
    return " ".join(options)


def pinned_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"llama-cpp-python(?:\[[^\]]*\])?==([^"]+)"', text)
    if match is None:
        raise SystemExit("tools/llama_wheel.py: no llama-cpp-python pin in pyproject.toml")
    return match.group(1)


def compiler_id() -> str:
    try:
        out = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0] if out.stdout else "unknown"
    except OSError:
        return "unknown"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coopbench" / "llama-wheels"


def build(python: str) -> Path:
    version = pinned_version()
    args = cmake_args(cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8")))
    key = hashlib.sha256(f"{version}|{args}|{compiler_id()}".encode()).hexdigest()[:16]
    target = cache_dir() / key
    wheels = sorted(target.glob("llama_cpp_python-*.whl")) if target.is_dir() else []
    if wheels:
        return wheels[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"building llama-cpp-python {version} (once, ~5 min) with {args}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    try:
        env = {**os.environ, "CMAKE_ARGS": args, "FORCE_CMAKE": "1"}
        subprocess.run(
            [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
             "-w", str(tmp), f"llama-cpp-python=={version}"],
            env=env, check=True,
        )
        if not list(tmp.glob("llama_cpp_python-*.whl")):
            raise SystemExit("tools/llama_wheel.py: pip wheel produced no wheel")
        (tmp / "CMAKE_ARGS").write_text(args + "\n", encoding="utf-8")
        os.replace(tmp, target)  # atomic: a half-built directory is never taken for a cache hit
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(target.glob("llama_cpp_python-*.whl"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmake-args", action="store_true", help="print CMAKE_ARGS and exit")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs pip")
    ns = parser.parse_args()
    if ns.cmake_args:
        print(cmake_args(cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8"))))
        return
    print(build(ns.python))


if __name__ == "__main__":
    main()
