"""Spec and config files that are not text, too deep or too large (issue #25, 5).

A gzipped spec ended in a 44-line traceback and a deeply nested one in a 2,995-line
RecursionError, both exit 1. Each is now one line naming the file, exit 2.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest

from coopbench.core import configfile

GOOD = "name: t\nenvs: [meetgrid/meet-v0]\nplanners: [expert-v0]\nseeds: 0-1\n"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)

BAD_SPECS = {
    "gzipped": gzip.compress(GOOD.encode()),
    "binary": bytes(range(256)) * 4,
    "latin-1": "name: café\n".encode("latin-1"),
    "deep-flow": ("x: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "deep-block": "".join(f"{'  ' * i}k{i}:\n" for i in range(300)).encode(),
    "laughs": LAUGHS.encode(),
    "self-reference": b"a: &a [*a]\n",
    "huge": b"# " + b"x" * (configfile.MAX_BYTES + 10) + b"\n",
}
WHY = {"gzipped": "not UTF-8 text", "binary": "not UTF-8 text", "latin-1": "not UTF-8 text",
       "deep-flow": "nested more than 64 levels", "deep-block": "nested more than 64 levels",
       "laughs": "once its aliases are expanded",
       "self-reference": "once its aliases are expanded", "huge": "larger than"}


def coopbench(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def assert_one_line(result: subprocess.CompletedProcess, path, why: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith("error: ") and str(path) in lines[0] and why in lines[0], lines[0]


@pytest.mark.parametrize("kind", sorted(BAD_SPECS))
def test_a_bad_matrix_spec_is_one_line_naming_it(tmp_path, kind):
    spec = tmp_path / f"{kind}.yaml"
    spec.write_bytes(BAD_SPECS[kind])
    assert_one_line(coopbench(["matrix", str(spec), "--out", str(tmp_path / "run")]), spec,
                    WHY[kind])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["gzipped", "deep-flow", "laughs"])
def test_a_bad_llm_config_is_one_line_naming_it(tmp_path, kind):
    config = tmp_path / "llm.yaml"
    config.write_bytes(BAD_SPECS[kind])
    result = coopbench(["llm", "check", "sim:expert"], COOPBENCH_LLM_CONFIG=str(config))
    assert_one_line(result, config, WHY[kind])


def test_nesting_up_to_the_limit_and_plain_aliases_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    nested = "x: " + "[" * 60 + "1" + "]" * 60 + "\n"
    shared = "base: &b {horizon: 20}\nenvs: [*b, *b, *b]\n"
    for text in (nested, shared, GOOD):
        path.write_text(text)
        assert configfile.load_yaml(path, "spec") is not None
