"""The LLM backend registry (`coopbench.llm.backends`): one table of spec schemes that the
parser, `make`, `coopbench llm backends` and the CLI's `--llm` help read; plug-ins through
the entry-point group `coopbench.llms`, loaded under the env/planner registries' policy."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coopbench.core import registry as core_registry
from coopbench.core.errors import CapsError, CoopbenchError
from coopbench.llm import Oracle, backends, make, parse

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ["local", "openai", "openai-compat", "sim"]

PLUGIN = '''
from coopbench.llm.backends import BackendEntry
from coopbench.llm.capabilities import Capabilities
from coopbench.llm.request import Reply, ScoreReply


class Parrot:
    simulated = False
    cacheable = False

    def __init__(self, spec, config):
        self.word = spec.model or "hello"
        self.model_id = spec.canonical()

    def capabilities(self, refresh=False):
        return Capabilities(constrained=None, scoring="sampled")

    def generate(self, request):
        return Reply(text=self.word, tokens_in=1, tokens_out=1)

    def score(self, request):
        return ScoreReply(logprobs=[0.0] * len(request.candidates), tokens_in=1)


def parse(spec, rest):
    from coopbench.core.errors import CoopbenchError
    from coopbench.llm.spec import ModelSpec

    if not rest.isalpha():
        raise CoopbenchError(f"bad model spec {spec!r}: parrot: needs a word")
    return ModelSpec("parrot", model=rest.lower())


ENTRY = BackendEntry("parrot", "{module}:Parrot", ("parrot:<word>",), "repeats <word>",
                     {caps}, parse="{module}:parse")
'''


def plugin(where: Path, module: str, entry: str, caps: str = '{"scoring": "sampled"}',
           scheme: str | None = None) -> None:
    """A package `module` in `where` with a dist-info naming `entry` in `coopbench.llms`."""
    dist = where / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[coopbench.llms]\n{scheme or 'parrot'} = {entry}\n")
    (where / f"{module}.py").write_text(PLUGIN.replace("{module}", module).replace("{caps}", caps))
    importlib.invalidate_caches()  # this process sees the new files at once


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Plug-ins written into `tmp_path` are seen by this process's registry (then forgotten)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    problems: list[str] = []
    said = core_registry._reporter[0]
    core_registry.set_problem_reporter(problems.append)
    backends.registry.reload()
    yield problems
    core_registry.set_problem_reporter(said)
    backends.registry.reload()
    for name in [m for m in sys.modules if m.startswith("parrot")]:
        del sys.modules[name]


def subprocess_env(path: Path | None = None) -> dict[str, str]:
    parts = [str(ROOT), *([str(path)] if path else []), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parts), "NO_COLOR": "1",
            "COLUMNS": "200"}


def coopbench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], env=env,
                          capture_output=True, text=True, timeout=120)


# -- the built-ins ---------------------------------------------------------------------------


def test_the_builtins_are_listed_in_their_order():
    assert backends.schemes()[:4] == BUILTIN
    assert all(e.source == "builtin" for e in backends.entries()[:4])
    result = coopbench("llm", "backends", "--json", env=subprocess_env())
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [e["scheme"] for e in listed][:4] == BUILTIN
    sim = listed[3]
    assert sim["forms"] == ["sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]"]
    assert sim["capabilities"]["scoring"] == "simulated" and listed[1]["capabilities"] == "probed"


def test_the_table_lists_scheme_forms_capabilities_help_and_source():
    result = coopbench("llm", "backends", env=subprocess_env())
    assert result.returncode == 0, result.stderr
    assert re.match(r"\d+ LLM backends\s", result.stdout), result.stdout
    local = next(row for row in result.stdout.splitlines() if row.startswith("local "))
    assert "local:<name>" not in local  # one form a line
    assert "token-tree" in local and "llama.cpp" in local and local.rstrip().endswith("builtin")
    assert "openai-compat:<base_url>#<model>" in result.stdout


def test_declared_capabilities_are_what_the_backends_say():
    from coopbench.llm.local import LocalBackend
    from coopbench.llm.sim import SimBackend

    table = {e.scheme: e.capabilities for e in backends.entries()}
    assert table["sim"] == SimBackend(parse("sim:expert")).capabilities()
    assert table["local"] == LocalBackend(Path("x.gguf"), "x", "x").capabilities()
    assert table["openai"] == table["openai-compat"] == backends.PROBED


def test_an_unknown_scheme_is_one_line_listing_the_registered_schemes():
    with pytest.raises(CoopbenchError) as info:
        parse("claude:opus")
    message = str(info.value)
    assert "\n" not in message and "unknown scheme 'claude'" in message
    assert "registered: local, openai, openai-compat, sim" in message
    with pytest.raises(CoopbenchError, match="did you mean openai-compat"):
        parse("openai-compt:http://h/v1#m")


def test_a_schemes_own_error_shows_that_schemes_forms_only():
    with pytest.raises(CoopbenchError) as info:
        parse("sim:oracle")
    assert "(forms: sim:<policy>?" in str(info.value) and "local:<name>" not in str(info.value)


def test_help_strings_are_derived_from_the_table():
    from coopbench.cli import credit_cmd, llm_cmd, play_cmd, run_cmd

    text = backends.spec_help()
    for entry in backends.registry.builtins():
        assert all(form in text for form in entry.forms), entry.scheme
    assert "coopbench llm backends" in text

    def help_of(func, name: str) -> str:
        return inspect.signature(func).parameters[name].default.help

    assert help_of(run_cmd.run, "llm") == text
    assert help_of(credit_cmd.collect, "llm") == text
    assert help_of(llm_cmd.check, "spec") == backends.spec_help("Model spec")
    assert help_of(play_cmd.play, "llm").endswith(text.partition(":")[2])


def test_building_sim_imports_neither_llama_cpp_nor_openai():
    code = (
        "import sys\n"
        "from coopbench import llm\n"
        "model = llm.make('sim:expert', cache=False)\n"
        "model.complete([{'role': 'user', 'content': 'go'}], oracle=llm.Oracle('A'))\n"
        "llm.parse('local'); llm.parse('openai:gpt-4o-mini')\n"
        "print(sorted(m for m in ('llama_cpp', 'openai') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_builtin_scheme_never_looks_for_plugins(installed, tmp_path):
    plugin(tmp_path, "parrotbroken", "parrotbroken_typo:ENTRY")
    assert parse("sim:expert").scheme == "sim"
    assert installed == []  # the broken plug-in was not even looked at


# -- plug-ins ---------------------------------------------------------------------------------


def test_a_plugin_scheme_parses_builds_and_round_trips(installed, tmp_path):
    plugin(tmp_path, "parrotok", "parrotok:ENTRY")
    spec = parse("parrot:Polly")
    assert spec.canonical() == "parrot:polly" and parse(spec.canonical()) == spec
    entry = backends.entry_for("parrot")
    assert entry.source == "parrotok" and entry.caps_summary() == "choice none, scoring sampled"
    model = make("parrot:Polly", cache=False)
    reply = model.complete([{"role": "user", "content": "hi"}], oracle=Oracle("x"))
    assert reply.text == "polly" and model.spec == "parrot:polly"
    assert model.capabilities().scoring == "sampled"
    assert "parrot" in backends.schemes() and "parrot:<word>" in backends.forms_text()
    with pytest.raises(CoopbenchError, match="parrot: needs a word"):
        parse("parrot:12")
    assert installed == []


def test_a_typo_in_a_plugins_module_path_is_one_line_naming_it(tmp_path):
    plugin(tmp_path, "parrotmod", "parrotmdo:ENTRY")
    env = subprocess_env(tmp_path)
    result = coopbench("llm", "backends", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "llm plug-in 'parrot' (parrotmdo:ENTRY) failed to register, skipped: "
        "ModuleNotFoundError: No module named 'parrotmdo'"]
    assert "Warning" not in result.stderr and "sim:<policy>" in result.stdout
    run = coopbench("llm", "check", "parrot:polly", env=env)  # then the scheme is unknown
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2 and "failed to register" in lines[0]
    assert "unknown scheme 'parrot'" in lines[1] and "Traceback" not in run.stderr


def test_a_plugin_with_bad_capabilities_stops_with_one_line(installed, tmp_path):
    plugin(tmp_path, "parrotcaps", "parrotcaps:ENTRY", caps='{"scoring": "psychic"}')
    with pytest.raises(CapsError) as info:
        parse("parrot:polly")
    assert str(info.value).startswith("llm plug-in 'parrot' (parrotcaps:ENTRY): llm scheme "
                                      "'parrot': capabilities: scoring must be one of")
    with pytest.raises(CapsError):  # every read, until it is fixed
        backends.entries()


@pytest.mark.parametrize("scheme, entry, why", [
    ("sim", "parrotsim:ENTRY", "its entry is for scheme 'parrot', but the entry point is named "
                               "'sim'"),
    ("parrot", "parrotobj:Parrot", "parrotobj:Parrot is a type, not a "
                                   "coopbench.llm.backends.BackendEntry"),
])
def test_a_plugin_that_is_not_a_proper_entry_is_skipped_in_one_line(installed, tmp_path,
                                                                      scheme, entry, why):
    plugin(tmp_path, entry.partition(":")[0], entry, scheme=scheme)
    assert "parrot" not in backends.schemes()
    assert len(installed) == 1 and why in installed[0], installed
    assert installed[0].startswith(f"llm plug-in {scheme!r} ({entry}) failed to register")
