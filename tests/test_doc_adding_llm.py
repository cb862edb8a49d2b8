"""docs/adding-an-llm-backend.md, run end to end from the page's own code.

The plug-in is assembled from the page alone: its `pyproject.toml` block, its `BackendEntry`
block as the package's `__init__.py` and its backend block as the module the entry's factory
names. It is installed with pip into a private directory (the page's `pip install -e` would
write into this venv), every `coopbench` command of the page's shell block then runs as written
(the listing, `llm check`, a run of Central with the plug-in's model), and the backend is held
to what its entry declares. Each step is a subprocess, so this session never imports the
package. If the page's code stops working, this test fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from docpages import code_blocks, only, run

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-an-llm-backend.md"

# what the installed plug-in must do, asked in a subprocess with the plug-in importable
CONTRACT = """
from coopbench.llm import backends, make, parse

entry = backends.entry_for({scheme!r})
assert entry.source == {name!r}, entry.source
spec = parse({spec!r})
assert parse(spec.canonical()) == spec, spec  # the canonical form round-trips
model = make({spec!r}, cache=False)
assert model.capabilities() == entry.capabilities, (model.capabilities(), entry.capabilities)
messages = [{{"role": "user", "content": "pick one"}}]
replies = {{model.complete(messages, choices=["A", "B", "C"], seed=s).text for s in range(30)}}
assert replies <= {{"A", "B", "C"}} and len(replies) > 1, replies  # a die, not a constant
again = make({spec!r}, cache=False).complete(messages, choices=["A", "B", "C"], seed=3).text
assert again == model.complete(messages, choices=["A", "B", "C"], seed=3).text  # seeded
scores = model.score(messages, ["A", "B"])
assert len(scores.logprobs) == 2 and model.usage.calls == 32
print("ok")
"""


@pytest.fixture(scope="module")
def page() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_walkthrough_builds_lists_checks_and_runs_the_backend(page, tmp_path):
    blocks = code_blocks(page)
    pyproject = only(blocks, "toml", '"coopbench.llms"', DOC.name)
    entry_code = only(blocks, "python", "BackendEntry(", DOC.name)
    backend_code = only(blocks, "python", "def generate(", DOC.name)
    shell = only(blocks, "bash", "coopbench llm backends", DOC.name)

    # 1-3: the package, as the page lays it out
    name = re.search(r'^name = "([^"]+)"', pyproject, re.M)[1]  # (no tomllib on 3.10)
    scheme, target = re.search(r'"coopbench\.llms"\]\n([\w.+-]+) = "([^"]+)"', pyproject).groups()
    package, _, attr = target.partition(":")
    assert re.search(rf"^{attr} = BackendEntry\(\n\s+scheme=\"{scheme}\"", entry_code, re.M)
    factory = re.search(r'factory="([^"]+)"', entry_code)[1]
    module, _, cls = factory.partition(":")
    assert module.startswith(f"{package}.") and f"class {cls}:" in backend_code
    source = tmp_path / "src" / name
    (source / package).mkdir(parents=True)
    (source / "pyproject.toml").write_text(pyproject)
    (source / package / "__init__.py").write_text(entry_code)
    (source / package / f"{module.rpartition('.')[2]}.py").write_text(backend_code)

    site, work, cache = tmp_path / "site", tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),  # this checkout's coopbench
        "COOPBENCH_CACHE_DIR": str(cache),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    env.pop("COOPBENCH_LLM_CONFIG", None)

    # 4: the page's shell block, line by line
    done_commands: set[str] = set()
    for line in shell.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "python":  # installed with coopbench's own interpreter, as the page says
            assert words[1:5] == ["-m", "pip", "install", "-e"] and Path(words[5]).name == name
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                            "--target", str(site), str(source)], cwd=work, env=env, check=True,
                           capture_output=True, timeout=240)
            continue
        assert words[0] == "coopbench", f"unexpected command in the page: {line}"
        done = run([sys.executable, "-m", "coopbench", *words[1:]], work, env, quiet=True)
        command = " ".join(words[1:3])
        done_commands.add(command)
        if command == "llm backends":
            listed = [row for row in done.stdout.splitlines() if row.startswith(f"{scheme} ")]
            assert listed and listed[0].rstrip().endswith(name), done.stdout  # source = package
            assert all(f in done.stdout for f in re.search(r"forms=\(([^)]*)\)",
                                                           entry_code)[1].split('"')[1::2])
        if command.startswith("llm check"):
            spec = words[3]
            assert re.search(rf"^identity +{re.escape(spec)}$", done.stdout, re.M), done.stdout
        if words[1] == "run":
            out = work / words[words.index("--out") + 1]
            llm = words[words.index("--llm") + 1]
            assert "episodes in" in done.stdout
            records = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
            assert records and all(r["error"] is None for r in records), records
            assert sum(r["llm_queries"] for r in records) > 0
            calls = [json.loads(x) for x in (out / "llm_calls.jsonl").read_text().splitlines()]
            assert calls and {c["spec"] for c in calls} == {llm}
    assert {"llm backends", "llm check"} <= done_commands and any(
        c.startswith("run") for c in done_commands)

    # the backend keeps the promises its entry makes
    spec = next(w for w in shell.split() if w.startswith(f"{scheme}:"))
    contract = CONTRACT.format(scheme=scheme, name=name, spec=spec)
    assert run([sys.executable, "-c", contract], work, env, quiet=True).stdout.strip() == "ok"
