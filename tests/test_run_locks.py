"""One lock for every command that writes a run directory or an output file (issue #25, 1).

`credit train` had none: two runs into one `--out` both exited 0 and interleaved their curves.
Here the second writer of any command is refused with the same one line naming the holder,
and a start that fails leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from coopbench.core.runlock import RunDirBusy, file_lock, run_lock, started

TRAIN = ("credit", "train", "--env", "meetgrid/meet-v0", "--envs", "2", "--rollout", "16",
         "--threads", "1")


def coopbench(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def _default_sigint() -> None:
    """A shell's background job inherits SIGINT ignored, and Python keeps it so: give the
    child the default, as a terminal's Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "coopbench", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def wait_for_lines(path, n, proc):
    while proc.poll() is None and not (path.exists() and path.read_bytes().count(b"\n") >= n):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""


def assert_refused(result, holder_pid: int, command: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ") and "is in use by another coopbench process" in lines[0]
    assert f"pid {holder_pid} on {socket.gethostname()}, `{command}`" in lines[0], lines[0]


def rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "curves.jsonl").read_text().splitlines()]


def test_a_second_credit_train_on_the_same_out_is_refused_and_the_first_keeps_its_curves(
        meetgrid, tmp_path):
    out = tmp_path / "cs1"
    first = start(*TRAIN, "--steps", "10000000", "--out", str(out))
    try:
        wait_for_lines(out / "curves.jsonl", 2, first)
        second = coopbench(*TRAIN, "--steps", "320", "--seed", "1", "--out", str(out))
        assert_refused(second, first.pid, "coopbench credit train")
        resumed = coopbench(*TRAIN, "--steps", "320", "--out", str(out), "--resume")
        assert_refused(resumed, first.pid, "coopbench credit train")  # into a live run too
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, stderr
    assert "continue with the same command and --resume" in stderr
    updates = [r["update"] for r in rows(out)]
    assert updates == list(range(1, len(updates) + 1))  # one run's rows, none of the second's
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert json.loads((out / "train.json").read_text())["seed"] == 0  # the first's config
    assert not (out / ".run.holder").exists()  # resuming it: tests/test_sigterm.py


def test_a_credit_train_with_a_bad_potential_leaves_nothing_behind(meetgrid, tmp_path):
    bad = tmp_path / "pot"
    bad.mkdir()
    (bad / "potential.pt").write_bytes(b"not a checkpoint")
    out = tmp_path / "runs" / "new"
    result = coopbench(*TRAIN, "--reward", "llm", "--potential", str(bad), "--steps", "64",
                       "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_a_run_whose_critic_cannot_be_read_leaves_no_directory(meetgrid, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04not a critic")
    out = tmp_path / "run"
    result = coopbench("run", "--env", "meetgrid/meet-v0", "--planner", "read-j-v0",
                       "--llm", "sim:expert", "--planner-kwarg", f"critic={bad}", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_a_failed_start_in_a_directory_holding_other_files_removes_nothing(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError), run_lock(out, "test", results=("episodes.jsonl",)):
        (out / "manifest.json").write_text("{}")
        raise ValueError("bad start")
    assert (out / "notes.txt").read_text() == "mine"


def test_a_failed_start_in_the_current_directory_keeps_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError), run_lock(".", "test"):
        (tmp_path / "manifest.json").write_text("{}")
        raise ValueError("bad start")
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_a_run_that_began_its_work_is_kept_when_it_fails(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError), run_lock(out, "test", results=("episodes.jsonl",)):
        (out / "manifest.json").write_text('{"status": "running"}')
        started(out)
        raise ValueError("a worker died before any episode finished")
    assert (out / "manifest.json").exists()  # the manifest says how it ended: resumable


def test_a_failed_resume_keeps_what_the_directory_held(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "episodes.jsonl").write_text('{"cell": "a"}\n')
    with pytest.raises(ValueError), run_lock(out, "test", results=("episodes.jsonl",)):
        raise ValueError("bad resume")
    assert (out / "episodes.jsonl").read_text() == '{"cell": "a"}\n'


HOLD = """\
import sys, time
from coopbench.core.runlock import file_lock, run_lock
lock = file_lock if sys.argv[1] == "file" else run_lock
with lock(sys.argv[2], "coopbench critic train"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_held_output_refuses_a_second_writer_with_one_line(tmp_path, kind):
    target = tmp_path / ("critic.pt" if kind == "file" else "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(target)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = file_lock if kind == "file" else run_lock
        with pytest.raises(RunDirBusy) as info, lock(target, "second"):
            pass
        message = str(info.value)
        assert f"{target} is in use by another coopbench process (pid {holder.pid}" in message
        assert "`coopbench critic train`" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    with lock(target, "after the holder died"):  # the OS dropped the lock with its holder
        pass
    if kind == "file":
        assert list(tmp_path.iterdir()) == []  # the next holder cleans up after a killed one


def test_a_file_lock_cleans_up_after_itself_and_can_be_taken_again(tmp_path):
    target = tmp_path / "data.npz"
    for _ in range(2):
        with file_lock(target, "collect"):
            assert (tmp_path / ".data.npz.lock").exists()
        assert list(tmp_path.iterdir()) == []


def test_critic_collect_into_a_locked_file_is_refused(meetgrid, tmp_path):
    target = tmp_path / "data.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "file", str(target)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = coopbench("critic", "collect", "--env", "meetgrid/meet-v0", "--out",
                           str(target), "--expert-episodes", "1", "--reset-episodes", "0")
        assert_refused(result, holder.pid, "coopbench critic train")
    finally:
        holder.kill()
        holder.wait()
    assert not target.exists()


def test_a_lock_file_removed_by_its_holder_is_never_held_twice(tmp_path, monkeypatch):
    """The race a removed lock file opens: B opens the file, A removes it and lets go, B's
    flock then lands on the orphan; B must see that and lock the file now at that path, or B
    and a third writer C would both hold "the" lock."""
    import fcntl

    from coopbench.core import runlock

    path = tmp_path / ".x.lock"
    path.touch()
    real, removed = fcntl.flock, []

    def removed_between_open_and_flock(fd, op):
        if not removed:
            path.unlink()  # A, between B's open and B's flock
            removed.append(True)
        return real(fd, op)

    monkeypatch.setattr(runlock.fcntl, "flock", removed_between_open_and_flock)
    fd = runlock._flock(path)
    try:
        assert removed and os.path.samestat(os.fstat(fd), os.stat(path))
        with pytest.raises(BlockingIOError):
            runlock._flock(path)  # C is refused: one holder
    finally:
        runlock._HELD.discard(fd)
        os.close(fd)
