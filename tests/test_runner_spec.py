"""Matrix specs: validation messages name the file, the key and what is allowed."""

import subprocess
import sys

import pytest

from coopbench import planners
from coopbench.core.errors import ConfigError, CoopbenchError, UnknownIdError
from coopbench.runner.cells import expand
from coopbench.runner.spec import load_spec, parse_spec

GOOD = """\
name: t
envs: [meetgrid/meet-v0]
planners: [baseline/random-v0, {id: llm/central-v0, kwargs: {}}]
llms: ["sim:expert?noise=0.2"]
seeds: 0-2
"""


def write(tmp_path, text, name="m.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_spec_loads_with_defaults(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.seeds == [0, 1, 2] and spec.episodes_per_seed == 1
    assert [p.id for p in spec.planners] == ["baseline/random-v0", "llm/central-v0"]
    assert spec.execution.executor == "serial" and not spec.budget.is_set()


def test_malformed_yaml_is_one_line_with_file_and_line(tmp_path):
    path = write(tmp_path, GOOD + "caps: {max_steps: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}:7:") and "malformed YAML" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("planer: x\n", "unknown key 'planer' at top level; allowed: name, description, envs"),
        ("caps: {max_step: 3}\n", "unknown key 'max_step' at caps; allowed: max_steps"),
        ("execution: {executor: threads}\n",
         "bad value for key 'execution.executor': Input should be 'serial', 'process' or 'ray'"),
        ("budget: {max_llm_calls: -1}\n", "bad value for key 'budget.max_llm_calls'"),
        ("episodes_per_seed: 0\n", "bad value for key 'episodes_per_seed'"),
    ],
)
def test_bad_keys_and_values_name_file_key_and_what_is_allowed(tmp_path, extra, expected):
    path = write(tmp_path, GOOD + extra)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)


def test_bad_seeds_and_llm_specs(tmp_path):
    with pytest.raises(ConfigError, match="key 'seeds'.*range string"):
        load_spec(write(tmp_path, GOOD.replace("0-2", "zero")))
    with pytest.raises(ConfigError, match="key 'llms': bad model spec 'gpt4'"):
        load_spec(write(tmp_path, GOOD.replace('"sim:expert?noise=0.2"', "gpt4")))
    with pytest.raises(ConfigError, match="key 'envs'.*meetgrid/meet-v0 listed more than once"):
        load_spec(write(tmp_path, GOOD.replace("[meetgrid/meet-v0]",
                                               "[meetgrid/meet-v0, meetgrid/meet-v0]")))
    with pytest.raises(ConfigError, match="missing key 'envs'"):
        parse_spec({"name": "x", "planners": ["random-v0"], "seeds": [0]}, "s.yaml")
    with pytest.raises(ConfigError, match="a matrix spec is a mapping"):
        parse_spec(["not", "a", "mapping"], "s.yaml")


def test_unknown_ids_name_the_file_and_close_ids(meetgrid, tmp_path):
    spec = load_spec(write(tmp_path, GOOD.replace("meetgrid/meet-v0", "meetgrid/meat-v0")))
    with pytest.raises(UnknownIdError) as err:
        expand(spec, "m.yaml")
    assert "m.yaml: envs: unknown env id 'meetgrid/meat-v0'" in str(err.value)
    assert "meetgrid/meet-v0" in str(err.value)


def test_capabilities_skip_cells_and_say_why(meetgrid):
    planners.registry.ids()  # load built-ins and plug-ins, then add a planner that misfits
    planners.register("meetgrid/peeker-v0", "coopbench_meetgrid.planner:WalkerPlanner",
                      caps={"needs_llm": False, "requires_partial_obs": True})
    spec = parse_spec({
        "name": "x", "envs": ["meetgrid/meet-v0"], "seeds": [0, 1],
        "planners": ["baseline/random-v0", "llm/central-v0", "llm/roco-v0",
                     "meetgrid/peeker-v0"],
        "llms": ["sim:expert", "sim:expert?noise=0.5"],
    })
    plan = expand(spec)
    cells = {(c.planner, c.llm) for c in plan.cells}
    # no-LLM planners get one llm-less cell; LLM planners one per LLM
    assert ("baseline/random-v0", "none") in cells
    assert {("llm/central-v0", "sim:expert"), ("llm/central-v0", "sim:expert?noise=0.5")} <= cells
    # a planner that *uses* partial views runs on a fully observed env (it sees everything)
    assert ("llm/roco-v0", "sim:expert") in cells
    assert len(plan.tasks) == 2 * len(plan.cells) == 10
    assert plan.skipped == [{
        "env": "meetgrid/meet-v0", "planner": "meetgrid/peeker-v0",
        "reason": "meetgrid/peeker-v0 needs per-agent partial views; "
                  "meetgrid/meet-v0 is fully observed",
    }]
    no_llm = parse_spec({"name": "x", "envs": ["meetgrid/meet-v0"], "seeds": [0],
                         "planners": ["llm/central-v0"], "llms": []})
    assert "needs an LLM" in expand(no_llm).skipped[0]["reason"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_errors_are_one_red_line(meetgrid, tmp_path):
    bad = write(tmp_path, GOOD + "budget: {max_dollars: 3}\n", "bad.yaml")
    result = cli("matrix", str(bad), "--out", str(tmp_path / "out"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "unknown key 'max_dollars' at budget; allowed: max_llm_calls" in lines[0]
    blocker = tmp_path / "file"
    blocker.write_text("")
    good = write(tmp_path, GOOD)
    result = cli("matrix", str(good), "--out", str(blocker / "run"))
    assert result.returncode == 2 and "cannot write to output directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("matrix", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "cannot read matrix spec" in result.stderr


def test_unknown_key_error_type_is_a_coopbench_error():
    assert issubclass(ConfigError, CoopbenchError)


def test_shipped_matrices_load_and_expand_without_skips():
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.yaml"))
    names = {p.stem for p in shipped}
    assert {"quick", "read-overcooked", "read-dv-roco"} <= names
    for path in shipped:
        spec = load_spec(path)
        plan = expand(spec, str(path))
        assert plan.skipped == [] and plan.tasks, path
    roco = expand(load_spec(Path(__file__).resolve().parents[1] / "benchmarks/read-dv-roco.yaml"))
    assert len({c.env for c in roco.cells}) == 14 and len(roco.cells) == 14 * 9


def test_unreachable_ray_cluster_is_one_line_in_seconds(meetgrid, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("matrix", str(write(tmp_path, GOOD)), "--out", str(tmp_path / "o"),
                 "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in result.stderr
