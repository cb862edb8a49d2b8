"""The `coopbench` command, run as users run it: a subprocess with a real exit status."""

import json
import subprocess
import sys

import pytest

from coopbench.runner.store import RunStore


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coopbench", *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_help():
    assert cli("version").stdout.startswith("coopbench ")
    for command in ("--help", "envs --help", "planners --help", "run --help", "version --help"):
        result = cli(*command.split())
        assert result.returncode == 0 and "Usage" in result.stdout, command


def test_envs_json_lists_the_plugin(meetgrid):
    result = cli("envs", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert all({"id", "description"} <= set(e) for e in entries)
    assert "meetgrid/meet-v0" in {e["id"] for e in entries}


def test_planners_json_lists_baselines_and_plugin(meetgrid):
    entries = json.loads(cli("planners", "--json").stdout)
    ids = {e["id"] for e in entries}
    assert {"baseline/random-v0", "baseline/expert-v0", "meetgrid/walker-v0"} <= ids


def test_unknown_env_is_one_line_naming_close_ids(meetgrid, tmp_path):
    result = cli("run", "--env", "meetgrid/meat-v0", "--planner", "random-v0", "--out",
                 str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "meetgrid/meet-v0" in lines[0] and "Traceback" not in result.stderr
    result = cli("run", "--env", "nope/missing-v0", "--planner", "random-v0", "--out",
                 str(tmp_path))
    assert result.returncode == 2 and "unknown env id 'nope/missing-v0'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--bogus"],
        ["run", "--env", "meetgrid/meet-v0", "--planner", "random-v0", "--seeds", "a-b",
         "--out", "x"],
        ["nosuchcommand"],
    ],
)
def test_bad_options_exit_2_with_one_line(meetgrid, args):
    result = cli(*args)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(meetgrid):
    result = cli("--debug", "run", "--env", "nope/missing-v0", "--planner", "x", "--out", "y")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_run_writes_a_run_directory_and_resumes(meetgrid, tmp_path):
    out = tmp_path / "run"
    args = ("run", "--env", "meetgrid/meet-v0", "--planner", "random-v0", "--llm", "sim:expert",
            "--seeds", "0-2", "--out", str(out))
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    store = RunStore(out)
    episodes, torn = store.read_episodes()
    assert [e.seed for e in episodes] == [0, 1, 2] and torn == []
    assert episodes[0].llm == "none"  # the random planner uses no LLM
    manifest = store.read_manifest()
    assert manifest["spec"]["seeds"] == [0, 1, 2] and "commit" in manifest["git"]
    assert store.transcripts_path.exists()
    again = cli(*args)
    assert again.returncode == 0 and "3 of 3 episodes already done" in again.stdout
    assert [e.seed for e in store.read_episodes()[0]] == [0, 1, 2]


def test_interrupted_run_resumes_without_duplicates(meetgrid, tmp_path):
    out = tmp_path / "run"
    args = ("run", "--env", "meetgrid/meet-v0", "--planner", "expert-v0", "--seeds", "0-3",
            "--out", str(out))
    assert cli(*args).returncode == 0
    store = RunStore(out)
    data = store.episodes_path.read_bytes()
    lines = data.splitlines(keepends=True)
    store.episodes_path.write_bytes(b"".join(lines[:2]) + lines[2][:30])  # killed mid-write
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    episodes, torn = store.read_episodes()
    assert sorted(e.seed for e in episodes) == [0, 1, 2, 3] and torn == []


def test_play_writes_a_gif_of_the_episode(meetgrid, tmp_path):
    from PIL import Image

    gif = tmp_path / "sub" / "meet.gif"
    result = cli("play", "--env", "meetgrid/meet-v0", "--planner", "expert-v0", "--gif", str(gif))
    assert result.returncode == 0, result.stderr
    assert "success" in result.stdout and "step   0" in result.stdout
    with Image.open(gif) as image:
        assert image.n_frames == 5  # the initial state + 4 steps
