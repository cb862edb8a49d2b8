"""`coopbench credit collect | fit | train | plot`, run as users run them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from coopbench.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `coopbench ...` in this process (a subprocess per call would cost seconds each)."""
    monkeypatch.setenv("COOPBENCH_LLM_CACHE", "off")

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def test_credit_help_as_a_real_command():
    result = subprocess.run([sys.executable, "-m", "coopbench", "credit", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert all(c in result.stdout for c in ("collect", "fit", "train", "plot"))


def test_collect_fit_train_resume_plot(meetgrid, tmp_path, cli):
    prefs, pot, run = tmp_path / "prefs", tmp_path / "pot", tmp_path / "run"
    result = cli("credit", "collect", "--env", "meetgrid/meet-v0", "--llm",
                 "sim:expert?noise=0.1&seed=0", "--pairs", "60", "--repeats", "3",
                 "--out", str(prefs))
    assert result.returncode == 0, result.stderr
    assert "360 LLM queries" in result.stdout and "(simulated)" in result.stdout
    assert len((prefs / "llm_calls.jsonl").read_text().splitlines()) == 360
    result = cli("credit", "fit", "--prefs", str(prefs), "--out", str(pot), "--steps", "100",
                 "--lr", "0.01")
    assert result.returncode == 0, result.stderr
    meta = json.loads((pot / "potential.json").read_text())
    assert meta["env_id"] == "meetgrid/meet-v0" and meta["features_version"] == "1"
    assert meta["preferences"]["queries"] == 360
    train = ["credit", "train", "--env", "meetgrid/meet-v0", "--reward", "llm", "--potential",
             str(pot), "--envs", "2", "--rollout", "32", "--out", str(run)]
    result = cli(*train, "--steps", "128")
    assert result.returncode == 0, result.stderr
    assert "device cpu" in result.stdout or "device cuda" in result.stdout
    result = cli(*train, "--steps", "192")  # same dir without --resume: refused
    assert result.returncode == 2 and "--resume" in result.stderr
    result = cli(*train, "--steps", "192", "--resume")  # a longer run continues
    assert result.returncode == 0, result.stderr
    assert "resumed from update 2" in result.stdout
    rows = [json.loads(line) for line in (run / "curves.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2, 3]
    png = tmp_path / "curves.png"
    result = cli("credit", "plot", f"llm={run}", "--metric", "success", "--threshold", "0.5",
                 "--out", str(png))
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 1000 and "first reaches success" in result.stdout
    (run / "curves.png").unlink()
    result = cli("report", str(run), "--format", "json")  # `coopbench report` knows PPO runs
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["reward"] == "llm" and summary["updates"] == 3
    assert summary["metrics"]["success"]["env_steps"] == 192
    assert (run / "curves.png").stat().st_size > 1000
    result = cli("report", str(run), "--format", "html")
    assert result.returncode == 2 and "training run" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["credit", "train", "--env", "meetgrid/meet-v0", "--reward", "dense"],
         "unknown reward mode"),
        (["credit", "train", "--env", "meetgrid/meet-v0", "--env-kwargs", "{bad"],
         "not valid JSON"),
        (["credit", "train", "--env", "meetgrid/meet-v0", "--device", "tpu"], "unknown device"),
        (["credit", "fit", "--prefs", "/nonexistent"], "holds no preferences"),
        (["credit", "collect", "--env", "meetgrid/meet-v0", "--llm", "sim:oracle"],
         "bad model spec"),
        (["credit", "plot", "no-equals-sign"], "expected LABEL=RUN_DIR"),
    ],
)
def test_bad_input_is_one_red_line(meetgrid, tmp_path, cli, args, message):
    if "--out" not in args and args[1] != "plot":
        args = [*args, "--out", str(tmp_path / "out")]
    if args[1] == "plot":
        args = [*args, "--out", str(tmp_path / "p.png")]
    result = cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
