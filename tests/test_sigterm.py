"""SIGTERM (Slurm, systemd, `docker stop`) stops a run like Ctrl-C (issue #25, 4).

It used to exit 143 with no message and leave the manifest `running` and `.reserve` and
`.run.holder` behind. Now: one line, exit 143, manifest `interrupted`, nothing left over, and
the resume ends with the same episodes as a run that was never stopped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from test_run_dir_lock import SLOW_CLI, SPEC, keys, wait_for_lines

from coopbench.runner.store import RunStore

SEEDS = "0-9"


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SLOW_CLI, *args], capture_output=True,
                          text=True, timeout=300)


def terminate(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and [x for x in lines if "error" in x] == lines[-1:], stderr
    return lines[-1]  # the stop adds this one line to what the run printed before


def outcomes(run_dir) -> list[tuple]:
    """What an episode did (not how long it took or where)."""
    episodes, bad = RunStore(run_dir).read_episodes()
    assert bad == []
    return sorted((e.cell, e.episode, e.seed, e.success, e.return_, e.interaction_steps,
                   e.trajectory, e.error) for e in episodes)


def assert_left_clean(run_dir) -> None:
    assert RunStore(run_dir).read_manifest()["status"] == "interrupted"
    assert not (run_dir / ".reserve").exists() and not (run_dir / ".run.holder").exists()


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_sigtermed_matrix_stops_cleanly_and_resumes_to_the_same_episodes(
        meetgrid, tmp_path, executor):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("0-29", SEEDS))
    args = ["matrix", str(spec), "--no-report", "--executor", executor]
    if executor == "process":
        args += ["--workers", "2"]
    out = tmp_path / "stopped"
    proc = start(*args, "--out", str(out))
    wait_for_lines(out / "episodes.jsonl", 3, proc)
    line = terminate(proc)
    assert line.startswith("error: interrupted") and "run the same command again" in line
    assert_left_clean(out)
    assert 3 <= len(keys(out)) < 10
    again = cli(*args, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert RunStore(out).read_manifest()["status"] == "complete"
    whole = cli(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    assert outcomes(out) == outcomes(tmp_path / "whole")
    assert len(outcomes(out)) == 10


def test_a_sigtermed_run_stops_cleanly_and_resumes(meetgrid, tmp_path):
    args = ["run", "--env", "meetgrid/meet-v0", "--planner", "slow-v0", "--seeds", SEEDS]
    out = tmp_path / "stopped"
    proc = start(*args, "--out", str(out))
    wait_for_lines(out / "episodes.jsonl", 3, proc)
    assert terminate(proc).startswith("error: interrupted")
    assert_left_clean(out)
    assert cli(*args, "--out", str(out)).returncode == 0
    assert cli(*args, "--out", str(tmp_path / "whole")).returncode == 0
    assert outcomes(out) == outcomes(tmp_path / "whole")


def test_a_sigtermed_credit_train_stops_cleanly_and_resumes(meetgrid, tmp_path):
    out = tmp_path / "train"
    args = ["credit", "train", "--env", "meetgrid/meet-v0", "--envs", "2", "--rollout", "16",
            "--out", str(out)]
    proc = start(*args, "--steps", "10000000")
    wait_for_lines(out / "curves.jsonl", 2, proc)
    assert "continue with the same command and --resume" in terminate(proc)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and not (out / ".run.holder").exists()
    done = len((out / "curves.jsonl").read_text().splitlines())
    resumed = cli(*args, "--steps", str(32 * (done + 1)), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from update" in resumed.stdout
