"""The layer rules: every import inside coopbench, lazy ones included, points down.

core is the bottom (types, errors, registry, I/O); envs and llm sit on it and know nothing of
planners; planners know nothing of critics (they are handed one) or the runner; critics know
nothing of credit (credit shapes critic targets, not the reverse); reporting reads what the
runner wrote (through runner.store) and runs nothing, and neither the runner nor anything it
runs (envs, llm, agents, planners, critics) imports reporting; nothing but the CLI imports
the CLI. The episode loop (`episode.py`) drives an env with a planner and is handed its LLM and
critic, so it imports neither, nor the runner; `testing` (the plug-in checks) runs envs and
planners, never the runner, critics or credit; credit writes its manifest through core, never the
runner. Imports by name count too: a string naming a
coopbench module (`importlib.import_module("coopbench.x")`, a registry's entry point
`"coopbench.x.y:Name"` or built-in module) is an import of that part.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "coopbench"

FORBIDDEN = {  # part -> parts it must not import
    "core": {"agents", "cli", "credit", "critics", "envs", "episode", "llm", "planners",
             "reporting", "runner"},
    "envs": {"agents", "cli", "credit", "critics", "episode", "llm", "planners", "reporting",
             "runner"},
    "llm": {"agents", "cli", "credit", "critics", "envs", "episode", "planners", "reporting",
            "runner"},
    "planners": {"cli", "credit", "critics", "episode", "reporting", "runner"},
    "agents": {"cli", "credit", "critics", "planners", "reporting", "runner"},
    "critics": {"cli", "credit", "reporting", "runner"},
    "credit": {"cli", "reporting", "runner"},  # a training run writes its manifest via core
    "runner": {"cli", "reporting"},
    "reporting": {"agents", "cli", "credit", "critics", "envs", "episode", "llm", "planners",
                  "testing"},
    "episode": {"agents", "cli", "credit", "critics", "llm", "reporting", "runner", "testing"},
    "testing": {"cli", "credit", "critics", "reporting", "runner"},
}
for _part in ("core", "envs", "llm", "planners", "agents", "critics", "credit", "runner"):
    FORBIDDEN[_part].add("testing")  # the plug-in checks are for tests, not for running

NAMED_MODULE = re.compile(r"coopbench(\.[a-z_][a-z0-9_]*)+(:[A-Za-z_]\w*)?")


def imports_of(path: Path) -> set[str]:
    """The coopbench parts `path` imports (`coopbench.x.y`, `from coopbench import x`, and a
    string that names a coopbench module, as `importlib` and the registries import them)."""
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if NAMED_MODULE.fullmatch(node.value):  # import_module(...), an entry point
                parts.add(node.value.split(":")[0].split(".")[1])
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "coopbench":
                names = [f"coopbench.{a.name}" for a in node.names]
        else:
            continue
        parts |= {n.split(".")[1] for n in names if n.startswith("coopbench.")}
    return parts


def part_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_import_points_up(part):
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports coopbench.{target}"
        for path in sorted(PACKAGE.rglob("*.py")) if part_of(path) == part
        for target in sorted(imports_of(path) & FORBIDDEN[part])
    ]
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_lazy_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from coopbench import runner\n    import coopbench.cli.run\n")
    assert imports_of(sample) == {"runner", "cli"}


def test_the_runner_may_not_import_reporting(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from coopbench.reporting.summary import summarise\n"
                      "def f():\n    from coopbench import reporting\n")
    assert imports_of(sample) & FORBIDDEN["runner"] == {"reporting"}
    for part in ("core", "envs", "llm", "agents", "planners", "critics"):
        assert "reporting" in FORBIDDEN[part]


def test_the_scan_sees_imports_by_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "def f():\n    return importlib.import_module('coopbench.runner.matrix')\n"
        "ENTRY = 'coopbench.critics.train:train'\n"
        "MESSAGE = 'see coopbench.credit.ppo for the trainer'\n"  # prose is not an import
    )
    assert imports_of(sample) == {"runner", "critics"}


def test_the_episode_loop_and_the_checks_have_rules():
    assert {"critics", "runner", "llm"} <= FORBIDDEN["episode"]
    assert {"runner", "critics"} <= FORBIDDEN["testing"]
    assert all("testing" in FORBIDDEN[p] for p in FORBIDDEN if p not in ("testing", "episode"))
