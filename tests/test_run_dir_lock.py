"""One writer per run directory (issue #14, case 1): a second `run` or `matrix` with the same
`--out` exits 2 naming the holder, and a killed holder never blocks the resume."""

import os
import signal
import socket
import subprocess
import sys
import time

from coopbench.runner.lock import run_lock
from coopbench.runner.store import RunStore

SPEC = """\
name: lock-test
envs: [meetgrid/meet-v0]
planners: [meetgrid/slow-v0]
seeds: 0-29
"""
EPISODES = 30

# The CLI with a planner that takes 0.25 s per episode, so that the first writer is still
# running when the second one starts (no test depends on how fast the machine is otherwise).
SLOW_CLI = """\
import sys, time
from coopbench import planners
from coopbench.planners.baseline import ExpertPlanner

class Slow(ExpertPlanner):
    def reset(self, env, llm, rng):
        time.sleep(0.25)
        super().reset(env, llm, rng)

planners.registry.ids()
planners.register("meetgrid/slow-v0", Slow, caps={"needs_llm": False})
from coopbench.cli import main
main(sys.argv[1:])
"""


def cli(*args):
    return subprocess.run([sys.executable, "-c", SLOW_CLI, *args], capture_output=True,
                          text=True, timeout=300)


def start(*args):
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_lines(path, n, proc):
    while proc.poll() is None and not (path.exists() and path.read_bytes().count(b"\n") >= n):
        time.sleep(0.01)
    assert proc.poll() is None, "the first writer finished before the test could race it"


def keys(run_dir):
    episodes, bad = RunStore(run_dir).read_episodes()
    assert bad == []
    return [(e.cell, e.episode) for e in episodes]


def assert_refused(result, holder_pid):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"pid {holder_pid} on {socket.gethostname()}" in lines[0], lines[0]
    assert lines[0].startswith("error: ") and "is in use by another coopbench process" in lines[0]


def test_a_second_matrix_on_the_same_out_exits_2_naming_the_holder(meetgrid, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    first = start("matrix", str(spec), "--out", str(out), "--no-report")
    wait_for_lines(out / "episodes.jsonl", 2, first)
    second = cli("matrix", str(spec), "--out", str(out), "--no-report")
    assert_refused(second, first.pid)
    also = cli("run", "--env", "meetgrid/meet-v0", "--planner", "slow-v0", "--out", str(out))
    assert_refused(also, first.pid)  # a `run` into a running matrix directory too
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    done = keys(out)
    assert len(done) == len(set(done)) == EPISODES  # every episode recorded once
    assert RunStore(out).read_manifest()["status"] == "complete"
    assert len(RunStore(out).read_manifest()["invocations"]) == 1  # the refused never wrote


def test_a_second_run_on_the_same_out_exits_2_naming_the_holder(meetgrid, tmp_path):
    out = tmp_path / "run"
    args = ("run", "--env", "meetgrid/meet-v0", "--planner", "slow-v0", "--seeds", "0-29",
            "--out", str(out))
    first = start(*args)
    wait_for_lines(out / "episodes.jsonl", 2, first)
    assert_refused(cli(*args), first.pid)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    done = keys(out)
    assert len(done) == len(set(done)) == EPISODES


def test_a_sigkilled_holder_never_blocks_the_resume(meetgrid, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("0-29", "0-9"))
    out = tmp_path / "run"
    first = start("matrix", str(spec), "--out", str(out), "--no-report")
    wait_for_lines(out / "episodes.jsonl", 3, first)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    assert (out / ".run.holder").exists()  # stale, as a kill leaves it: it must not matter
    again = cli("matrix", str(spec), "--out", str(out), "--no-report")
    assert again.returncode == 0, again.stderr
    done = keys(out)
    assert len(done) == len(set(done)) == 10
    assert not (out / ".run.holder").exists()


HOLD_AND_FORK = """\
import os, sys, time
from coopbench.runner.lock import run_lock
with run_lock(sys.argv[1], "test holder"):
    if os.fork() == 0:  # a worker forked while the lock is held, outliving its parent
        time.sleep(30)
        os._exit(0)
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_forked_worker_does_not_keep_the_lock_of_its_killed_parent(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_FORK, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == holder.pid]
    assert children
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    try:
        with run_lock(tmp_path, "resume"):  # at once, while the forked child still lives
            assert os.path.exists(f"/proc/{children[0]}")
    finally:
        for child in children:
            os.kill(child, signal.SIGKILL)


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
