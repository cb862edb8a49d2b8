"""Plug-in envs that break the contract fail at their first `make`, in one line; `check_env`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from coopbench import envs
from coopbench.core.errors import PluginEnvError
from coopbench.envs.validate import check_contract
from coopbench.testing import EnvCheckFailed, check_env


@pytest.fixture
def plugin_registry(monkeypatch):
    """Register ids as if a plug-in package named `bad-plugin` had provided them."""
    envs.registry.ids()  # load the built-ins first, as the `builtin` source
    monkeypatch.setattr(envs.registry, "_source", "bad-plugin")
    yield envs.registry
    monkeypatch.undo()
    envs.registry.reload()


def _meetgrid_subclass(**overrides):
    from coopbench_meetgrid.env import MeetGridEnv

    return type("BrokenMeetGrid", (MeetGridEnv,), overrides)


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


def test_alias_to_unknown_text_fails_at_make_naming_id_and_fix(meetgrid, plugin_registry):
    broken = _meetgrid_subclass(text_aliases=lambda self, agent: {"go": "move up"})
    plugin_registry.register("badgrid/alias-v0", broken)
    with pytest.raises(PluginEnvError) as info:
        envs.make("badgrid/alias-v0")
    message = _one_line(info.value)
    assert "'badgrid/alias-v0'" in message and "'move up'" in message
    assert "map each alias to one of the agent's vocabulary texts" in message


def test_missing_max_steps_fails_in_one_line(meetgrid, plugin_registry):
    from coopbench_meetgrid.env import MeetGridEnv

    def no_cap(self, size: int = 5, render_mode=None):
        MeetGridEnv.__init__(self, size=size, render_mode=render_mode)
        del self.max_steps

    plugin_registry.register("badgrid/nocap-v0", _meetgrid_subclass(__init__=no_cap))
    with pytest.raises(PluginEnvError) as info:
        envs.make("badgrid/nocap-v0")
    message = _one_line(info.value)
    assert "'badgrid/nocap-v0'" in message and "max_steps is None" in message
    assert "take max_steps in BrokenMeetGrid.__init__" in message


def test_other_contract_breaches_are_named(meetgrid):
    cases = [
        ({"possible_agents": []}, "possible_agents is missing or empty"),
        ({"metadata": {"render_modes": []}}, "metadata has no 'name'"),
        ({"vocabulary": lambda self, agent: []}, "vocabulary('Alice') is empty"),
        ({"wait_index": lambda self, agent: 9}, "wait_index('Alice') is 9"),
        ({"expert_joint": None}, "missing method(s) expert_joint"),
    ]
    for overrides, problem in cases:
        with pytest.raises(PluginEnvError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            check_contract(_meetgrid_subclass(**overrides)(), "badgrid/x-v0")


def test_a_plugin_is_checked_once_and_builtins_pass(meetgrid):
    envs.make("meetgrid/meet-v0")
    assert any(key[0] == "meetgrid/meet-v0" for key in envs._checked)
    for env_id in envs.registry.ids():  # built-ins are not checked by make: check them here
        check_contract(envs.make(env_id), env_id)


def test_check_env_passes_on_the_example_plugin(meetgrid):
    check_env("meetgrid/meet-v0")
    check_env(envs.make("meetgrid/meet-v0", size=3), seed=2, steps=6)


def test_check_env_catches_a_snapshot_that_misses_state(meetgrid):
    forgetful = _meetgrid_subclass(_snapshot_state=lambda self: None,
                                   _restore_state=lambda self, state: None)
    with pytest.raises(EnvCheckFailed, match="restore"):
        check_env(forgetful)


def test_check_env_catches_randomness_outside_np_random(meetgrid):
    import random

    from coopbench_meetgrid.env import MeetGridEnv

    def _reset(self, seed, options):
        MeetGridEnv._reset(self, seed, options)
        self.pos["Alice"] = (random.randrange(5), random.randrange(5))

    with pytest.raises(EnvCheckFailed, match="np_random"):
        check_env(_meetgrid_subclass(_reset=_reset), steps=4)


@pytest.mark.parametrize(
    "env_id", ["overcooked/cramped_room-v0", "roco/sweep-y1g1-v0", "roco/sort-level1-v0",
               "roco/sandwich-recipe1-v0"],
)
def test_check_env_passes_on_one_cheap_env_of_each_builtin_family(env_id):
    check_env(env_id, steps=6)


def test_envs_table_is_readable_at_80_columns():
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "coopbench", "envs"], env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if line.startswith(("overcooked/", "roco/"))]
    assert [row.split()[0] for row in rows] == envs.registry.ids()  # whole ids, one line each
    assert all(len(line.split()) > 2 for line in rows)  # and a description on each
