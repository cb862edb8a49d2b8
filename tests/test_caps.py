"""Typed capabilities: checked at registration, read by the runner's skip rules, documented."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coopbench import envs, planners
from coopbench.cli import app
from coopbench.core.caps import EnvCaps, PlannerCaps, markdown_table
from coopbench.core.errors import CapsError, ConfigError
from coopbench.core.registry import Registry
from coopbench.runner.cells import expand
from coopbench.runner.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ENV_KEYS = "known keys: agents, partial_obs, critic, modes, task"
PLANNER_KEYS = ("known keys: needs_llm, needs_critic, mode, uses_partial_obs, "
                "requires_partial_obs, requires_full_obs, env_families, max_agents")


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message and "pydantic" not in message and "errors.pydantic" not in message
    return message


@pytest.fixture
def env_registry():
    return Registry("env", "coopbench.tests.none")


@pytest.fixture
def planner_registry():
    return Registry("planner", "coopbench.tests.none")


# -- registration --------------------------------------------------------------------------


def test_an_unknown_key_is_refused_at_registration_in_one_line(env_registry, planner_registry):
    with pytest.raises(CapsError) as info:
        env_registry.register("grid/meet-v0", "x:Env", caps={"agents": 2, "partial_ob": False})
    message = _one_line(info.value)
    assert message == ("env 'grid/meet-v0': unknown caps key 'partial_ob' (did you mean "
                       f"'partial_obs'?); {ENV_KEYS}")
    with pytest.raises(CapsError) as info:
        planner_registry.register("grid/walk-v0", "x:Planner", caps={"text_obs": True})
    assert _one_line(info.value) == f"planner 'grid/walk-v0': unknown caps key 'text_obs'; " \
                                    f"{PLANNER_KEYS}"
    assert env_registry.ids() == [] and planner_registry.ids() == []  # nothing half-registered
    assert isinstance(info.value, ConfigError)  # the CLI's one red line, exit status 2


@pytest.mark.parametrize(
    ("kind", "caps", "key"),
    [
        ("env", {"agents": "2"}, "'agents': Input should be a valid integer (got '2')"),
        ("env", {"agents": True}, "'agents': Input should be a valid integer (got True)"),
        ("env", {"agents": 0}, "'agents': Input should be greater than or equal to 1"),
        ("env", {"partial_obs": "no"}, "'partial_obs': Input should be a valid boolean"),
        ("env", {"modes": ["joint", "parallel"]}, "'modes.1': Input should be 'joint' or"),
        ("env", {"modes": "joint"}, "'modes': Input should be a valid tuple"),
        ("planner", {"needs_llm": 1}, "'needs_llm': Input should be a valid boolean (got 1)"),
        ("planner", {"mode": "parallel"}, "'mode': Input should be 'joint' or 'sequential'"),
        ("planner", {"env_families": "roco"}, "'env_families': Input should be a valid tuple"),
        ("planner", {"requires_partial_obs": True, "requires_full_obs": True},
         "requires_partial_obs and requires_full_obs cannot both be true"),
    ],
)
def test_a_wrong_type_is_refused_at_registration_naming_the_key(kind, caps, key):
    with pytest.raises(CapsError) as info:
        Registry(kind, "coopbench.tests.none").register("grid/x-v0", "x:X", caps=caps)
    message = _one_line(info.value)
    assert message.startswith(f"{kind} 'grid/x-v0': ") and key in message
    assert message.endswith(ENV_KEYS if kind == "env" else PLANNER_KEYS)


def test_caps_are_typed_and_frozen_whether_given_as_model_or_dict(env_registry, planner_registry):
    model = EnvCaps(agents=3, partial_obs=True, task="sort")
    assert env_registry.register("grid/a-v0", "x:Env", caps=model).caps is model
    spec = env_registry.register("grid/b-v0", "x:Env", caps={"agents": 3, "modes": ["joint"]})
    assert spec.caps == EnvCaps(agents=3, modes=("joint",))
    assert env_registry.register("grid/c-v0", "x:Env").caps == EnvCaps()  # nothing declared
    with pytest.raises(ValueError, match="frozen"):
        spec.caps.agents = 2  # type: ignore[misc]
    planner = planner_registry.register("grid/p-v0", "x:P", caps={"needs_llm": False})
    assert isinstance(planner.caps, PlannerCaps) and planner.caps.mode == "joint"
    with pytest.raises(CapsError, match="caps are EnvCaps, expected PlannerCaps"):
        planner_registry.register("grid/q-v0", "x:P", caps=EnvCaps())
    assert spec.to_json()["caps"] == {"agents": 3, "partial_obs": None, "critic": True,
                                      "modes": ["joint"], "task": None}
    json.dumps(planner.to_json())


def test_the_old_flags_name_still_registers_with_a_warning(env_registry, planner_registry):
    with pytest.warns(DeprecationWarning, match="`flags=` is deprecated"):
        spec = planner_registry.register("grid/p-v0", "x:P",
                                         flags={"needs_llm": False, "partial_obs": True})
    assert spec.caps == PlannerCaps(needs_llm=False, uses_partial_obs=True)
    with pytest.warns(DeprecationWarning):  # keys coopbench never read are dropped
        spec = env_registry.register("grid/e-v0", "x:E", flags={
            "agents": 2, "text_obs": True, "family": "grid"})
    assert spec.caps == EnvCaps(agents=2)
    with pytest.warns(DeprecationWarning), pytest.raises(CapsError, match="'agent'"):
        env_registry.register("grid/f-v0", "x:E", flags={"agent": 2})
    with pytest.raises(CapsError, match="pass `caps=` only"):
        env_registry.register("grid/g-v0", "x:E", caps={}, flags={})


def test_every_builtin_id_has_typed_caps():
    env_specs = [s for s in envs.registry.specs() if s.source == "builtin"]
    planner_specs = [s for s in planners.registry.specs() if s.source == "builtin"]
    assert len(env_specs) > 20 and len(planner_specs) == 13
    for spec in env_specs:
        assert type(spec.caps) is EnvCaps, spec.id
        assert spec.caps.agents in (2, 3) and spec.caps.partial_obs is not None, spec.id
    for spec in planner_specs:
        assert type(spec.caps) is PlannerCaps, spec.id
    dialog = {s.id for s in planner_specs if s.caps.uses_partial_obs}
    assert dialog == {"llm/roco-v0", "read/read-s-v0", "read/read-s-scored-v0"}
    assert {s.id for s in planner_specs if not s.caps.needs_llm} == {
        "baseline/random-v0", "baseline/expert-v0", "baseline/critic-greedy-v0"}


def test_listings_show_caps(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["planners", "--json"])
    assert result.exit_code == 0
    entries = {e["id"]: e for e in json.loads(result.stdout)}
    assert entries["llm/roco-v0"]["caps"]["uses_partial_obs"] is True
    assert entries["baseline/random-v0"]["caps"]["needs_llm"] is False
    assert "flags" not in entries["baseline/random-v0"]
    result = CliRunner().invoke(app, ["envs", "--json"])
    entries = {e["id"]: e for e in json.loads(result.stdout)}
    assert entries["roco/sort-level1-v0"]["caps"]["agents"] == 3


# -- plug-ins through entry points ------------------------------------------------------------


def _bad_plugin(tmp_path: Path, caps: str) -> dict[str, str]:
    """A plug-in package whose env registration declares `caps`, visible to a subprocess."""
    dist = tmp_path / "badcaps-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badcaps\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[coopbench.envs]\nbadcaps = badcaps:register\n")
    (tmp_path / "badcaps.py").write_text(
        "def register(registry):\n"
        f"    registry.register('badgrid/meet-v0', 'badcaps:Env', caps={caps})\n"
    )
    path = os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NO_COLOR": "1"}


@pytest.mark.parametrize("command", [["envs"], ["run", "--env", "badgrid/meet-v0",
                                                "--planner", "random-v0"]])
def test_a_plugin_with_an_unknown_key_stops_the_cli_with_one_red_line(tmp_path, command):
    env = _bad_plugin(tmp_path, "{'agents': 2, 'partial_ob': False}")
    result = subprocess.run([sys.executable, "-m", "coopbench", *command], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: env plug-in 'badcaps' (badcaps:register): env 'badgrid/meet-v0': unknown caps "
        f"key 'partial_ob' (did you mean 'partial_obs'?); {ENV_KEYS}"
    ]


def test_a_plugin_with_bad_caps_fails_every_read_not_only_the_first(tmp_path, monkeypatch):
    env = _bad_plugin(tmp_path, "{'agents': 'two'}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    envs.registry.reload()
    try:
        for _ in range(2):  # no silently half-loaded registry after the first failure
            with pytest.raises(CapsError) as info:
                envs.registry.ids()
            assert "'agents': Input should be a valid integer (got 'two')" in _one_line(info.value)
    finally:
        monkeypatch.undo()
        envs.registry.reload()
    assert "badgrid/meet-v0" not in envs.registry.ids()


# -- the runner's skip rules ---------------------------------------------------------------------

RULE_CASES = [  # env caps, planner caps, the reason it is skipped (None: it runs)
    ({}, {"needs_llm": True}, "grid/p-v0 needs an LLM and the spec lists none under `llms`"),
    ({"partial_obs": False}, {"requires_partial_obs": True},
     "grid/p-v0 needs per-agent partial views; grid/e-v0 is fully observed"),
    ({"partial_obs": True}, {"requires_full_obs": True},
     "grid/p-v0 needs the full state; grid/e-v0 is partially observed"),
    ({"critic": False}, {"needs_critic": True},
     "grid/p-v0 needs an advantage critic; grid/e-v0 declares none can be trained"),
    ({}, {"env_families": ["roco", "overcooked"]},
     "grid/p-v0 supports env families roco, overcooked, not grid"),
    ({"agents": 3}, {"max_agents": 2}, "grid/p-v0 handles at most 2 agents; grid/e-v0 has 3"),
    ({"modes": ["joint"]}, {"mode": "sequential"},
     "grid/p-v0 plans in sequential mode; grid/e-v0 supports joint"),
    # what does not skip
    ({"partial_obs": False}, {"uses_partial_obs": True}, None),  # served the global view
    ({}, {"requires_partial_obs": True, "needs_critic": True, "max_agents": 2}, None),  # unknown
    ({"agents": 2, "modes": ["sequential"]},
     {"max_agents": 2, "mode": "sequential", "env_families": ["grid"]}, None),
]


@pytest.mark.parametrize(("env_caps", "planner_caps", "reason"), RULE_CASES)
def test_each_skip_rule_reads_the_typed_caps(monkeypatch, env_caps, planner_caps, reason):
    env_registry = Registry("env", "coopbench.tests.none")
    planner_registry = Registry("planner", "coopbench.tests.none")
    env_registry.register("grid/e-v0", "x:Env", caps=env_caps)
    planner_registry.register("grid/p-v0", "x:P", caps={"needs_llm": False, **planner_caps})
    monkeypatch.setattr(envs, "registry", env_registry)
    monkeypatch.setattr(planners, "registry", planner_registry)
    plan = expand(parse_spec({"name": "x", "envs": ["grid/e-v0"], "planners": ["grid/p-v0"],
                              "llms": [], "seeds": [0]}))
    if reason is None:
        assert plan.skipped == [] and [(c.env, c.llm) for c in plan.cells] == [("grid/e-v0",
                                                                               "none")]
    else:
        assert plan.skipped == [{"env": "grid/e-v0", "planner": "grid/p-v0", "reason": reason}]
        assert plan.cells == []
    assert plan.specs["grid/p-v0"]["caps"]["needs_llm"] == planner_caps.get("needs_llm", False)


# -- the docs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("page", "model"), [("adding-an-environment.md", EnvCaps),
                                             ("adding-a-planner.md", PlannerCaps)])
def test_the_docs_table_lists_exactly_the_fields(page, model):
    text = (DOCS / page).read_text()
    marker = f"<!-- caps table: {model.__name__} "
    assert marker in text, f"docs/{page} lost its {model.__name__} table"
    after = text[text.index(marker):].split("\n", 1)[1]
    table = "\n".join(line for line in after.splitlines()[:len(model.model_fields) + 3]
                      if line.startswith("|"))
    assert table == markdown_table(model), (
        f"docs/{page}: the {model.__name__} table differs from the model; paste:\n"
        + markdown_table(model))


def test_the_planners_page_shows_each_planners_caps():
    rows = re.findall(r"^\| `([a-z]+/[a-z0-9-]+-v\d+)`.*\| ([^|]+) \|$",
                      (DOCS / "planners.md").read_text(), flags=re.M)
    builtin = {s.id: s for s in planners.registry.specs() if s.source == "builtin"}
    assert {id for id, _ in rows} == set(builtin) - {"baseline/random-v0", "baseline/expert-v0"}
    for id, caps in rows:
        assert caps == builtin[id].caps.summary(), id


def test_the_runner_page_names_every_rule_field():
    text = (DOCS / "runner.md").read_text()
    section = text[text.index("### Cells and capabilities"):text.index("### Critic data budgets")]
    rows = re.findall(r"^\| `(\w+)`[^|]* \| ([^|]+) \|", section, flags=re.M)
    assert {planner for planner, _ in rows} == set(PlannerCaps.model_fields) - {
        "uses_partial_obs"}  # the one planner field that skips nothing
    env_fields = set(re.findall(r"`(\w+)`", " ".join(env for _, env in rows)))
    assert env_fields == set(EnvCaps.model_fields) - {"task"}  # the one env field no rule reads
