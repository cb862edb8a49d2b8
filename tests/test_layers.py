"""The layer rules: every import inside coopbench, lazy ones included, points down.

core is the bottom (types, errors, registry, I/O); envs and llm sit on it and know nothing of
planners; planners know nothing of critics (they are handed one) or the runner; critics know
nothing of credit (credit shapes critic targets, not the reverse); reporting reads what the
runner wrote (through runner.store) and runs nothing, and neither the runner nor anything it
runs (envs, llm, agents, planners, critics) imports reporting; nothing but the CLI imports
the CLI.
"""

from __future__ import annotations

import ast
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
    "credit": {"cli"},
    "runner": {"cli", "reporting"},
    "reporting": {"agents", "cli", "credit", "critics", "envs", "episode", "llm", "planners"},
}


def imports_of(path: Path) -> set[str]:
    """The coopbench parts `path` imports (`coopbench.x.y` and `from coopbench import x`)."""
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
