"""docs/adding-an-environment.md, run end to end from the page's own code.

The plug-in is assembled from the page alone: its `pyproject.toml` block, its `register_envs`
block as the package's `__init__.py` and the env file the page points to ("See `...` for all of
it in N lines", whose line count is checked too). It is installed with pip into a private
directory (the page's `pip install -e` would write into this venv), every `coopbench` command
of the page's shell block then runs as written (the expert, Central and ReAd-J with the sim
LLM; ReAd-J trains its on-demand critic in a private cache), and the page's `check_env` test
runs. Each step is a subprocess, so this package never meets the session's own copy of the
example plug-in. If the page's code stops working, this test fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from docpages import code_blocks, only, run

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-an-environment.md"


def episodes(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def page() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_pages_example_file_is_as_long_as_it_says(page):
    found = re.search(r"See `([^`]+\.py)` for all of it in (\d+) lines", page)
    assert found, "the page no longer points to its example env file"
    lines = (ROOT / found[1]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == int(found[2])


def test_the_walkthrough_builds_registers_checks_and_runs_the_plugin(page, tmp_path):
    blocks = code_blocks(page)
    pyproject = only(blocks, "toml", '"coopbench.envs"', DOC.name)
    register = only(blocks, "python", "def register_envs", DOC.name)
    shell = only(blocks, "bash", "coopbench run", DOC.name)
    check = only(blocks, "python", "check_env(", DOC.name)
    env_file = ROOT / re.search(r"See `([^`]+\.py)` for all of it", page)[1]

    # 1-3: the package, as the page lays it out
    name = re.search(r'^name = "([^"]+)"', pyproject, re.M)[1]  # (no tomllib on 3.10)
    entry = re.search(r'"coopbench\.envs"\]\n\w+ = "([^"]+)"', pyproject)[1]
    module, _, func = entry.partition(":")
    assert func == "register_envs" and f"def {func}(" in register
    source = tmp_path / "src" / name
    (source / module).mkdir(parents=True)
    (source / "pyproject.toml").write_text(pyproject)
    (source / module / "__init__.py").write_text(register)
    (source / module / env_file.name).write_text(env_file.read_text())
    env_id = re.search(r'registry\.register\(\s*"([^"]+)"', register)[1]
    assert f'"{module}.{env_file.stem}:' in register  # the entry point names the file we wrote

    site, work, cache = tmp_path / "site", tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),  # this checkout's coopbench
        "COOPBENCH_CACHE_DIR": str(cache),  # LLM cache and on-demand critics stay private
        "COLUMNS": "200",
    }
    env.pop("COOPBENCH_LLM_CONFIG", None)

    # 4: the page's shell block, line by line
    ran: dict[str, list[str]] = {}
    for line in shell.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "python":  # installed with coopbench's own interpreter, as the page says
            assert words[1:5] == ["-m", "pip", "install", "-e"] and Path(words[5]).name == name
            run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                 "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                 "--target", str(site), str(source)], work, env)
            continue
        assert words[0] == "coopbench", f"unexpected command in the page: {line}"
        done = run([sys.executable, "-m", "coopbench", *words[1:]], work, env)
        if words[1] == "envs":
            listed = [row for row in done.stdout.splitlines() if row.startswith(env_id)]
            assert listed and name in listed[0], done.stdout  # listed, source = the package
        if words[1] == "run":
            out = words[words.index("--out") + 1]
            ran[words[words.index("--planner") + 1]] = out
            assert f"episodes in {out}" in done.stdout

    assert {"expert-v0", "central-v0", "read-j-v0"} <= set(ran)
    for planner, out in ran.items():
        records = episodes(work / out)
        assert records and all(r["error"] is None for r in records), (planner, records)
    assert all(r["success"] for r in episodes(work / ran["expert-v0"]))
    read = episodes(work / ran["read-j-v0"])
    assert sum(r["llm_queries"] for r in read) > 0
    assert list((cache / "critics").glob("*.pt")), "ReAd-J did not train its on-demand critic"

    # ... and the page's test of the env
    (work / "page_check.py").write_text(check)
    tests = re.findall(r"^def (test_\w+)\(", check, re.M)
    assert tests, "the page's check block defines no test"
    calls = "; ".join(f"page.{t}()" for t in tests)
    run([sys.executable, "-c", f"import page_check as page; {calls}"], work,
        {**env, "PYTHONPATH": os.pathsep.join([str(work), env["PYTHONPATH"]])})
