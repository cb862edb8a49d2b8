"""The plug-in author's path (issue 27, item 6): each mistake a new author made is one line.

Each test names the broken plug-in, the command and the line it now prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coopbench import planners
from coopbench.core.types import PlanResult
from coopbench.planners.base import Planner
from coopbench.runner.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
ENV = "meetgrid/meet-v0"


def _typo_plugin(tmp_path: Path) -> dict[str, str]:
    """A plug-in whose entry point names a function that does not exist (`registr`)."""
    dist = tmp_path / "typoenv-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typoenv\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[coopbench.envs]\ntypoenv = typoenv:registr\n")
    (tmp_path / "typoenv.py").write_text("def register(registry):\n    pass\n")
    path = os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NO_COLOR": "1"}


def test_a_typo_in_an_entry_point_is_one_line_not_a_python_warning(tmp_path):
    # plug-in: entry point `typoenv = typoenv:registr`; command: `coopbench envs`
    result = subprocess.run([sys.executable, "-m", "coopbench", "envs"], env=_typo_plugin(tmp_path),
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert lines == ["env plug-in 'typoenv' (typoenv:registr) failed to register, skipped: "
                     "AttributeError: module 'typoenv' has no attribute 'registr'"], lines
    assert "Warning" not in result.stderr and "roco/sweep-y1g1-v0" in result.stdout


class OneHanded(Planner):
    """Returns an action for the first agent only."""

    def act(self, env):
        first = env.agents[0]
        return PlanResult({first: env.wait_action(first)})


@pytest.fixture
def one_handed(meetgrid):
    planners.register("meetgrid/one-handed-v0", OneHanded, caps={"needs_llm": False})
    yield "meetgrid/one-handed-v0"
    planners.registry.reload()


def test_a_joint_action_missing_an_agent_is_refused_in_one_line(one_handed, tmp_path, capsys):
    # planner: OneHanded; command: `coopbench run --env meetgrid/meet-v0 --planner ...`
    from coopbench.cli import main

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--env", ENV, "--planner", one_handed, "--seeds", "0-2", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert err[0] == ("error: planner meetgrid/one-handed-v0 on meetgrid/meet-v0: rule "
                      "joint-action: it returned no action for Bob; a joint action names every "
                      "live agent (its WAIT to idle)"), err
    manifest = RunStore(out).read_manifest()
    assert manifest["status"] == "failed" and "joint-action" in manifest["status_detail"]
    assert json.loads((out / "manifest.json").read_text())["status"] != "running"


def _broken_env(kind: str):
    from coopbench_meetgrid.env import MeetGridEnv

    class Broken(MeetGridEnv):
        def legal_indices(self, agent):
            legal = super().legal_indices(agent)
            return [*legal, len(self.vocabulary(agent))] if kind == "past" else legal

        def action_options(self, agent):
            options = super().action_options(agent)
            return [*options, "teleport"] if kind == "phantom" else options

    return Broken


@pytest.mark.parametrize(("kind", "line"), [
    ("past", "env 'Broken', agent 'Alice': rule action-options: action_options raised "
             "IndexError: list index out of range; every legal index must be a position in its "
             "5-action vocabulary"),
    ("phantom", "env 'Broken', agent 'Alice': rule options-in-vocabulary: action_options "
                "offers 'teleport', which is not in vocabulary('Alice')"),
])
def test_check_env_names_env_agent_and_rule_for_a_bad_action_index_or_option(meetgrid, kind,
                                                                             line):
    # env: MeetGrid with an index past its vocabulary / an option outside it; `check_env`
    from coopbench.testing import EnvCheckFailed, check_env

    with pytest.raises(EnvCheckFailed) as failed:
        check_env(_broken_env(kind))
    assert str(failed.value) == line


def test_the_runner_stops_in_one_line_on_such_an_env_and_never_leaves_running(
    meetgrid, tmp_path, capsys, monkeypatch
):
    # env: MeetGrid with an index past its vocabulary; command: `coopbench run ... read-j-v0`
    from coopbench import envs
    from coopbench.cli import main

    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    envs.register("meetgrid/past-v0", _broken_env("past"), caps={"agents": 2})
    out = tmp_path / "run"
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["run", "--env", "meetgrid/past-v0", "--planner", "read-j-v0", "--llm",
                  "sim:expert", "--out", str(out)])
    finally:
        envs.registry.reload()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith("error: env meetgrid/past-v0: resolving its critic failed "
                             "(IndexError: "), err
    # refused before any episode started: nothing left behind, so nothing left `running`
    assert not out.exists() or RunStore(out).read_manifest() is None


def test_adding_a_planner_to_a_spec_extends_the_run_as_documented(meetgrid, tmp_path):
    # docs/runner.md: "adding seeds, envs, planners or LLMs to the spec extends the run"
    from coopbench.core.errors import ConfigError
    from coopbench.runner.matrix import run_matrix
    from coopbench.runner.spec import parse_spec

    spec = {"name": "extend", "envs": [ENV], "planners": ["random-v0"], "seeds": "0-1"}
    out = tmp_path / "run"
    assert run_matrix(parse_spec(spec), out).ran == 2
    spec["planners"] = ["random-v0", "meetgrid/walker-v0"]  # a plug-in planner added
    extended = run_matrix(parse_spec(spec), out)
    assert (extended.ran, extended.done_before, extended.total) == (2, 2, 4)
    spec["planners"] = ["random-v0", {"id": "meetgrid/walker-v0", "kwargs": {"x": 1}}]
    with pytest.raises(ConfigError, match=r"changed incompatibly .*planners\.meetgrid/walker-v0"
                                          r"\.x: None -> 1"):
        run_matrix(parse_spec(spec), out)  # an option of a planner already run: refused


def test_a_wrong_import_inside_a_plugin_is_not_called_a_missing_package(tmp_path, monkeypatch):
    # plug-in: `from coopbench.core.errors import ParseError` (it is in core.types)
    from coopbench.core.errors import CoopbenchError
    from coopbench.core.registry import load_entry_point

    (tmp_path / "wrongimport.py").write_text("from coopbench.core.errors import ParseError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CoopbenchError) as failed:
        load_entry_point("wrongimport:Planner")
    assert "cannot import 'wrongimport': cannot import name 'ParseError'" in str(failed.value)
    assert "installed" not in str(failed.value)
    with pytest.raises(CoopbenchError, match="is the package that provides it installed"):
        load_entry_point("no_such_plugin_module:Planner")
