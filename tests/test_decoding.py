"""Decoding as a matrix axis: constrained and free cells side by side, never pooled.

The simulated model with `garble` writes malformed replies in free text; constrained to the
legal plans it cannot, so the two cells differ in parse failures, and each episode, cell key,
report row and manifest says which decoding it had.
"""

import json

import pytest

from coopbench.core.errors import ConfigError, CoopbenchError
from coopbench.llm.capabilities import Capabilities, resolve_decoding
from coopbench.reporting.summary import load_runs, summarise
from coopbench.runner.matrix import run_matrix
from coopbench.runner.spec import parse_spec
from coopbench.runner.store import RunStore

GARBLED = "sim:expert?garble=0.5&seed=3"


def spec(**extra):
    return parse_spec({"name": "decoding", "envs": ["meetgrid/meet-v0"],
                       "planners": ["llm/central-v0"], "llms": [GARBLED], "seeds": [0, 1, 2],
                       **extra})


def test_a_decoding_axis_runs_each_value_as_its_own_cell(meetgrid, tmp_path):
    out = tmp_path / "run"
    assert run_matrix(spec(decoding=["constrained", "free"]), out).status == "complete"
    episodes, _ = RunStore(out).read_episodes()
    by = {d: [e for e in episodes if e.decoding == d] for d in ("constrained", "free")}
    assert len(by["constrained"]) == len(by["free"]) == 3
    assert all("|decoding=constrained|" in e.cell for e in by["constrained"])
    assert sum(e.parse_failures for e in by["constrained"]) == 0  # replies are legal plans
    assert sum(e.parse_failures for e in by["free"]) > 0  # garbled free text is not
    rows = summarise(load_runs([out]))["cells"]
    assert sorted((r["decoding"], r["episodes"]) for r in rows) == [("constrained", 3),
                                                                    ("free", 3)]
    assert {r["algorithm"] for r in rows} == {f"llm/central-v0 @ {GARBLED} [{d}] (sim)"
                                              for d in ("constrained", "free")}
    manifest = RunStore(out).read_manifest()
    assert set(manifest["llms"]["decoding"].values()) == {"constrained", "free"}
    assert manifest["llms"]["models"][GARBLED]["capabilities"]["scoring"] == "simulated"


def test_auto_keeps_the_simulated_model_in_free_text_and_old_cell_keys(meetgrid, tmp_path):
    out = tmp_path / "run"
    run_matrix(spec(), out)
    episodes, _ = RunStore(out).read_episodes()
    assert {e.decoding for e in episodes} == {"free"}
    assert all("decoding=" not in e.cell for e in episodes)  # auto: keys as before the axis


def test_constrained_on_a_model_that_cannot_is_refused_before_any_episode(
        meetgrid, tmp_path, monkeypatch):
    from coopbench.llm.client import Model

    lacking = Capabilities(constrained=None, scoring="sampled",
                           notes=("no request form made replies one of the choices",))
    monkeypatch.setattr(Model, "capabilities", lambda self, refresh=False: lacking)
    out = tmp_path / "run"
    with pytest.raises(CoopbenchError, match="cannot constrain replies.*no request form"):
        run_matrix(spec(decoding="constrained"), out)
    assert not out.exists()  # a failed start leaves nothing behind
    run_matrix(spec(), out)  # auto degrades to free text instead
    assert {e.decoding for e in RunStore(out).read_episodes()[0]} == {"free"}
    assert RunStore(out).read_manifest()["llms"]["models"][GARBLED]["capabilities"]["notes"]


def test_resolve_decoding_rules():
    native = Capabilities(constrained="native", scoring="token-tree")
    served = Capabilities(constrained="grammar", scoring="per-prompt", source="probed")
    bare = Capabilities(constrained=None, scoring="sampled")
    assert resolve_decoding("auto", native, "local") == "constrained"
    assert resolve_decoding("auto", served, "x") == "constrained"
    assert resolve_decoding("auto", bare, "x") == "free"
    assert resolve_decoding("free", native, "local") == "free"
    with pytest.raises(CoopbenchError, match="decoding must be one of"):
        resolve_decoding("grammar", native, "local")
    assert json.loads(json.dumps(served.to_json())) == served.to_json()
    assert Capabilities.from_json(served.to_json()) == served


@pytest.mark.parametrize("bad, why", [
    (["auto", "free"], "auto resolves"), (["free", "free"], "distinct"), ("greedy", "decoding"),
])
def test_bad_decoding_values_are_one_line(bad, why):
    with pytest.raises(ConfigError, match=why) as info:
        spec(decoding=bad)
    assert "\n" not in str(info.value)


def test_the_old_use_choices_option_names_its_replacement():
    from coopbench import planners

    with pytest.raises(ConfigError, match="use_choices was replaced by decoding"):
        planners.make("llm/central-v0", use_choices="local")
