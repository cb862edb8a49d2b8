"""docs/adding-a-planner.md's LLM planner example runs as written (a doc that drifts fails)."""

import re
from pathlib import Path

import pytest

from coopbench import envs
from coopbench import llm as llm_layer
from coopbench.core.errors import ConfigError
from coopbench.episode import run_episode

DOC = Path(__file__).resolve().parent.parent / "docs" / "adding-a-planner.md"


def example_namespace() -> dict:
    text = DOC.read_text()
    section = text[text.index("## An LLM planner"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_vote_planner_of_the_doc_solves_meetgrid_with_three_calls_a_step(meetgrid):
    planner = example_namespace()["VotePlanner"](voters=3)
    steps = []
    model = llm_layer.make("sim:expert?noise=0.3&seed=1", cache=False)
    result = run_episode(envs.make("meetgrid/meet-v0"), planner, seed=0, llm=model,
                         on_step=steps.append)
    assert result.success
    assert [s.llm_queries for s in steps] == [3] * len(steps)  # every vote is one query round
    assert all(len(r.replies) == 3 for r in planner.rounds)  # ctx.said kept with each round


def test_the_doc_planner_refuses_an_unknown_option(meetgrid):
    with pytest.raises(ConfigError, match="unknown option"):
        example_namespace()["VotePlanner"](voter=3)


def test_the_doc_checks_its_planner_with_check_planner(meetgrid):
    text = DOC.read_text()
    section = text[text.index("### Check it"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "check_planner(" in code
    exec(compile(code, str(DOC), "exec"), example_namespace())  # passes: no exception


def test_every_name_in_the_import_table_imports_from_its_module():
    import importlib

    text = DOC.read_text()
    table = text[text.index("### What a plug-in may import"):].split("\n\n")[1]
    for row in table.splitlines()[2:]:
        modules, names = row.split("|")[1:3]
        modules = re.findall(r"`(coopbench[\w.]*)`", modules)
        for name in re.findall(r"`(\w+)`", names):
            assert any(hasattr(importlib.import_module(m), name) for m in modules), (name, row)
