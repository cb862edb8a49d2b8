"""A full disk (issue #14, case 2): the run stops at once with one line and exit 2, the
manifest says `interrupted`, no half line is left behind, and a resume once space is freed
gives the report an uninterrupted run gives.

The disk is simulated by `FullDisk`, which lets `os.write` put only so many bytes into files
under the run directory and then fails with ENOSPC (a short write first, as a real disk
does); a real 200 KB tmpfs is used too where this process may mount one.
"""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coopbench.cli import main
from coopbench.core.errors import StorageFull
from coopbench.core.io import append_jsonl
from coopbench.llm.calllog import CallLog
from coopbench.reporting.summary import load_runs, summarise
from coopbench.runner.store import RunStore

SPEC = """\
name: full-disk
envs: [meetgrid/meet-v0]
planners: [llm/central-v0, baseline/random-v0]
llms: ["sim:expert?noise=0.2"]
seeds: 0-9
"""


class FullDisk:
    """`os.write` into files under `root` succeeds for `room` more bytes, then ENOSPC.

    `short=False`: a write that does not fit fails whole with `err` (no short write first), so
    the error's own text reaches the user whichever file fills first (the LLM call log reports a
    short write as ENOSPC)."""

    def __init__(self, monkeypatch, root: Path, room: int, err: int = errno.ENOSPC,
                 short: bool = True) -> None:
        self.root, self.room, self.err, self.short = str(root.resolve()), room, err, short
        self.real = os.write
        monkeypatch.setattr(os, "write", self.write)

    def write(self, fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.root):
            return self.real(fd, data)
        if self.room <= 0 or (not self.short and len(data) > self.room):
            raise OSError(self.err, os.strerror(self.err))
        n = self.real(fd, bytes(data[: self.room]))  # a short write as the disk fills
        self.room -= n
        return n


def invoke(capsys, *args):
    """The CLI in this process: (exit status, stderr lines)."""
    try:
        main(list(args))
        status = 0
    except SystemExit as exc:
        status = exc.code or 0
    return status, capsys.readouterr().err.strip().splitlines()


def results(run_dir):
    summary = summarise(load_runs([run_dir]))
    summary.pop("runs")
    return summary


def test_a_full_disk_stops_the_matrix_with_one_line_and_the_resume_matches(
    meetgrid, tmp_path, monkeypatch, capsys
):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    reference = tmp_path / "reference"
    assert invoke(capsys, "matrix", str(spec), "--out", str(reference), "--no-report")[0] == 0
    out = tmp_path / "run"
    out.mkdir()
    written = sum(f.stat().st_size for f in reference.iterdir() if f.is_file())
    disk = FullDisk(monkeypatch, out, room=written // 3)  # full a third of the way through
    status, err = invoke(capsys, "matrix", str(spec), "--out", str(out), "--no-report")
    assert status == 2
    assert err[-1].startswith("error: cannot write ") and "No space left on device" in err[-1]
    assert "stopped with" in err[-1] and "run the same command again to resume" in err[-1]
    assert not any("Traceback" in line for line in err)
    manifest = RunStore(out).read_manifest()
    assert manifest["status"] == "interrupted" and "No space left" in manifest["status_detail"]
    episodes, bad = RunStore(out).read_episodes()
    assert bad == [] and 0 < len(episodes) < 30  # it stopped at once, no error episodes
    assert all(e.error is None for e in episodes)
    for name in ("episodes.jsonl", "transcripts.jsonl", "llm_calls.jsonl"):
        data = (out / name).read_bytes()
        assert not data or data.endswith(b"\n"), name  # the half line was cut back off
    assert not (out / ".reserve").exists()

    disk.room = 10**9  # space freed
    status, err = invoke(capsys, "matrix", str(spec), "--out", str(out), "--no-report")
    assert status == 0, err
    assert results(out) == results(reference)
    assert RunStore(out).read_manifest()["status"] == "complete"


@pytest.mark.parametrize("err", [errno.EDQUOT, errno.EROFS], ids=["EDQUOT", "EROFS"])
def test_quota_and_read_only_stop_the_run_command_the_same_way(
    meetgrid, tmp_path, monkeypatch, capsys, err
):
    out = tmp_path / "run"
    out.mkdir()
    args = ("run", "--env", "meetgrid/meet-v0", "--planner", "llm/central-v0", "--llm",
            "sim:expert?noise=0.2", "--seeds", "0-9", "--out", str(out))
    disk = FullDisk(monkeypatch, out, room=6_000, err=err, short=False)
    status, lines = invoke(capsys, *args)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: cannot write ") and os.strerror(err) in lines[0]
    assert "stopped with" in lines[0]  # the matrix's words: run is a one-cell matrix
    assert lines[0].endswith("free some space and run the same command again to resume")
    assert RunStore(out).read_manifest()["status"] == "interrupted"
    done = len(RunStore(out).read_episodes()[0])
    assert done < 10
    disk.room = 10**9
    status, lines = invoke(capsys, *args)
    assert status == 0, lines
    episodes, bad = RunStore(out).read_episodes()
    assert bad == [] and sorted(e.seed for e in episodes) == list(range(10))
    assert RunStore(out).read_manifest()["status"] == "complete"


def test_a_worker_that_hits_the_full_disk_stops_the_pool(meetgrid, tmp_path, monkeypatch):
    from coopbench.runner.matrix import run_matrix
    from coopbench.runner.spec import parse_spec

    spec = parse_spec({"name": "pool", "envs": ["meetgrid/meet-v0"], "seeds": list(range(12)),
                       "planners": ["llm/central-v0"], "llms": ["sim:expert?noise=0.2"]})
    out = tmp_path / "run"
    out.mkdir()
    FullDisk(monkeypatch, out, room=20_000)  # forked workers inherit the full disk
    with pytest.raises(StorageFull, match="No space left on device; stopped with") as exc:
        run_matrix(spec, out, executor="process", workers=2)
    assert "transcripts.jsonl" in str(exc.value) or "llm_calls.jsonl" in str(exc.value)
    assert RunStore(out).read_manifest()["status"] == "interrupted"
    episodes, bad = RunStore(out).read_episodes()
    assert bad == [] and all(e.error is None for e in episodes)  # never an "episode error"


def test_appends_cut_a_partial_line_back_off(tmp_path, monkeypatch):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, {"a": 1})
    FullDisk(monkeypatch, tmp_path, room=5)
    with pytest.raises(StorageFull, match=r"cannot write .*episodes.jsonl: No space left"):
        append_jsonl(path, {"b": "a line longer than the room that is left"})
    assert path.read_bytes() == b'{"a": 1}\n'
    with pytest.raises(StorageFull):
        CallLog(tmp_path / "llm_calls.jsonl").append({"call": 1})


def test_the_call_log_cuts_a_partial_line_back_off(tmp_path, monkeypatch):
    log = CallLog(tmp_path / "llm_calls.jsonl")
    log.append({"call": 1})
    FullDisk(monkeypatch, tmp_path, room=7)  # a short write of 7 bytes, then ENOSPC
    with pytest.raises(StorageFull, match=r"llm_calls.jsonl: No space left"):
        log.append({"call": 2, "reply": "a line longer than the room that is left"})
    assert log.path.read_bytes() == b'{"call": 1}\n'


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    where.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(where)],
                        capture_output=True).returncode == 0
    return ok


def test_a_real_200k_tmpfs(meetgrid, tmp_path):
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        spec = tmp_path / "spec.yaml"
        spec.write_text(SPEC.replace("0-9", "0-199"))
        out = disk / "run"
        command = [sys.executable, "-m", "coopbench", "matrix", str(spec), "--out", str(out),
                   "--no-report"]
        full = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert full.returncode == 2, full.stderr
        last = full.stderr.strip().splitlines()[-1]
        assert last.startswith("error: cannot write") and "No space left on device" in last
        assert "Traceback" not in full.stderr
        assert RunStore(out).read_manifest()["status"] == "interrupted"
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        episodes, bad = RunStore(out).read_episodes()
        assert bad == [] and len({(e.cell, e.episode) for e in episodes}) == len(episodes) == 400
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
