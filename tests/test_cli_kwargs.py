"""`--env-kwarg` / `--planner-kwarg` on `run` and `play`, and `run`'s default `--out`."""

from __future__ import annotations

import re

import pytest

from coopbench.cli import main
from coopbench.runner.store import RunStore

ENV = "overcooked/layout-v0"


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run `coopbench ARGS` in this process, as the script does: (status, stdout, stderr)."""
    try:
        main(list(args))
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def run_args(out, *extra: str) -> tuple[str, ...]:
    return ("run", "--env", ENV, "--planner", "random-v0", "--out", str(out), *extra)


def test_kwargs_reach_the_env_typed_and_are_recorded(capsys, tmp_path):
    status, _, err = cli(capsys, *run_args(
        tmp_path / "run", "--env-kwarg", "layout=asymmetric_advantages",
        "--env-kwarg", "max_steps=3"))
    assert status == 0, err
    store = RunStore(tmp_path / "run")
    spec = store.read_manifest()["spec"]
    assert spec["env_kwargs"] == {"layout": "asymmetric_advantages", "max_steps": 3}
    assert spec["planner_kwargs"] == {}
    (episode,), _ = store.read_episodes()
    assert episode.interaction_steps == 3  # an int, not "3": the env's cap took it


def test_play_builds_the_layout_given(capsys):
    from coopbench import envs

    status, out, err = cli(capsys, "play", "--env", ENV, "--quiet",
                           "--env-kwarg", "layout=asymmetric_advantages",
                           "--env-kwarg", "max_steps=2")
    assert status == 0, err
    assert "in 2 steps" in out
    default = envs.make(ENV)
    given = envs.make(ENV, layout="asymmetric_advantages")
    assert (default.layout, given.layout) == ("cramped_room", "asymmetric_advantages")


def test_values_are_read_as_yaml():
    from coopbench.cli.kwargs import parse_kwargs

    got = parse_kwargs(["length=14", "layout=asymmetric_advantages", "flag=true", "x=0.5",
                        "empty=", "day=2024-01-02", "word='14'"], "--env-kwarg")
    assert got == {"length": 14, "layout": "asymmetric_advantages", "flag": True, "x": 0.5,
                   "empty": None, "day": "2024-01-02", "word": "14"}


@pytest.mark.parametrize("item", ["layout", "=3", " =3", "max_steps=[1,", "1x=2"])
@pytest.mark.parametrize("command", ["run", "play"])
def test_a_malformed_item_is_one_line(capsys, tmp_path, item, command):
    args = run_args(tmp_path / "run") if command == "run" else ("play", "--env", ENV, "-q")
    status, _, err = cli(capsys, *args, "--env-kwarg", item)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "--env-kwarg" in lines[0], err
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize(
    ("option", "item", "names"),
    [
        ("--env-kwarg", "bogus=1", ENV),
        ("--planner-kwarg", "bogus=1", "baseline/random-v0"),
        ("--env-kwarg", "layout=no_such_layout", ENV),  # a value the env refuses
    ],
)
def test_an_unknown_key_or_refused_value_is_one_line(capsys, tmp_path, option, item, names):
    status, _, err = cli(capsys, *run_args(tmp_path / "run", option, item))
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert names in lines[0] and item.split("=")[0] in lines[0]


def test_an_llm_planner_option_is_checked_against_its_config(capsys, tmp_path):
    args = ("run", "--env", ENV, "--planner", "read-j-v0", "--llm", "sim:expert",
            "--out", str(tmp_path / "run"))
    status, _, err = cli(capsys, *args, "--planner-kwarg", "histroy=last")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "read/read-j-v0" in err and "histroy" in err and "history" in err
    status, _, err = cli(capsys, *args, "--planner-kwarg", "use_choices=5")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "use_choices" in err


def test_a_resume_with_other_kwargs_is_refused(capsys, tmp_path):
    out = tmp_path / "run"
    first = run_args(out, "--env-kwarg", "max_steps=2")
    assert cli(capsys, *first)[0] == 0
    status, _, err = cli(capsys, *run_args(out, "--env-kwarg", "max_steps=4"))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "max_steps: 2 -> 4" in err
    status, _, err = cli(capsys, *run_args(out))  # dropping the option is a change too
    assert status == 2 and "max_steps: 2 -> (unset)" in err
    status, out_text, err = cli(capsys, *first)
    assert status == 0 and "1 of 1 episodes already done" in out_text, err


def test_out_defaults_to_a_timestamped_dir_under_results_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = cli(capsys, "run", "--env", ENV, "--planner", "random-v0",
                           "--env-kwarg", "max_steps=1")
    assert status == 0, err
    (made,) = (tmp_path / "results" / "runs").iterdir()
    assert re.fullmatch(r"\d{8}-\d{6}-layout", made.name), made.name  # UTC time, env name
    assert (made / "manifest.json").exists() and str(made.relative_to(tmp_path)) in out
