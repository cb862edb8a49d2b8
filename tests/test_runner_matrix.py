"""The matrix runner: resume after SIGKILL, budgets, executors, the LLM cache, refusals."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coopbench.core.errors import ConfigError, CoopbenchError
from coopbench.core.io import read_jsonl
from coopbench.reporting.summary import load_runs, summarise
from coopbench.runner.matrix import dry_run, run_matrix
from coopbench.runner.spec import load_spec, parse_spec
from coopbench.runner.store import RunStore

SIM = "sim:expert?noise=0.4&garble=0.1&seed=3"
SPEC = f"""\
name: kill-test
envs: [meetgrid/meet-v0]
planners: [llm/central-v0, llm/react-v0, baseline/random-v0]
llms: ["{SIM}"]
seeds: 0-9
"""


def write_spec(tmp_path, text=SPEC, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def results(run_dir):
    """The report's numbers (everything but where the run lives)."""
    summary = summarise(load_runs([run_dir]))
    summary.pop("runs")
    return summary


def keys(run_dir):
    episodes, torn = RunStore(run_dir).read_episodes()
    assert torn == []
    return [(e.cell, e.episode) for e in episodes]


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_sigkill_at_a_random_moment_then_rerun_equals_an_uninterrupted_run(meetgrid, tmp_path):
    path = write_spec(tmp_path)
    reference = tmp_path / "reference"
    run_matrix(load_spec(path), reference, source=str(path))
    total = len(keys(reference))
    assert total == 30

    killed = tmp_path / "killed"
    rng = random.Random(2024)  # a "random" moment, reproducible
    kill_after, extra_sleep = rng.randint(3, 20), rng.uniform(0, 0.05)
    args = [sys.executable, "-m", "coopbench", "matrix", str(path), "--out", str(killed),
            "--no-report"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    episodes_file = killed / "episodes.jsonl"
    while proc.poll() is None:
        if episodes_file.exists() and episodes_file.read_bytes().count(b"\n") >= kill_after:
            time.sleep(extra_sleep)
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert kill_after <= len(read_jsonl(episodes_file).records) < total  # killed mid-run
    assert RunStore(killed).read_manifest()["status"] == "running"

    rerun = cli("matrix", str(path), "--out", str(killed), "--no-report")
    assert rerun.returncode == 0, rerun.stderr
    done = keys(killed)
    assert len(done) == len(set(done)) == total  # every episode exactly once
    assert set(done) == set(keys(reference))
    assert results(killed) == results(reference)
    transcripts = read_jsonl(killed / "transcripts.jsonl").records
    ref_transcripts = read_jsonl(reference / "transcripts.jsonl").records
    assert len(transcripts) == len(ref_transcripts)  # no steps of the lost episode left over
    assert RunStore(killed).read_manifest()["status"] == "complete"


def test_rerun_of_a_finished_matrix_runs_nothing_and_extending_seeds_runs_only_new(
    meetgrid, tmp_path
):
    path = write_spec(tmp_path, SPEC.replace("0-9", "0-2"))
    out = tmp_path / "run"
    first = run_matrix(load_spec(path), out, source=str(path))
    assert (first.ran, first.total) == (9, 9)
    before = results(out)
    again = run_matrix(load_spec(path), out, source=str(path), resume=True)
    assert again.ran == 0 and again.done_before == 9 and results(out) == before
    path.write_text(SPEC.replace("0-9", "0-3"))
    plan, done = dry_run(load_spec(path), out)  # what a run would do, writing nothing
    assert len(plan.tasks) == 12 and len(done) == 9
    more = run_matrix(load_spec(path), out, source=str(path))
    assert more.ran == 3 and len(set(keys(out))) == len(keys(out)) == 12


def test_incompatible_spec_change_and_bad_resume_are_refused(meetgrid, tmp_path):
    path = write_spec(tmp_path, SPEC.replace("0-9", "0"))
    out = tmp_path / "run"
    run_matrix(load_spec(path), out, source=str(path))
    path.write_text(SPEC.replace("0-9", "0") + "caps: {max_steps: 5}\n")
    with pytest.raises(ConfigError, match=r"changed incompatibly.*caps\.max_steps: None -> 5"):
        run_matrix(load_spec(path), out, source=str(path))
    with pytest.raises(ConfigError, match="changed incompatibly"):
        dry_run(load_spec(path), out)
    with pytest.raises(CoopbenchError, match="holds no matrix run to resume"):
        run_matrix(load_spec(path), tmp_path / "empty", source=str(path), resume=True)


def test_budget_stops_cleanly_and_a_raised_budget_resumes_to_the_same_report(meetgrid, tmp_path):
    reference = tmp_path / "reference"
    path = write_spec(tmp_path)
    run_matrix(load_spec(path), reference, source=str(path))
    budget_path = write_spec(tmp_path, SPEC + "budget: {max_llm_calls: 40}\n", "budget.yaml")
    out = tmp_path / "run"
    result = cli("matrix", str(budget_path), "--out", str(out), "--no-report")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "budget of 40 LLM calls reached" in lines[-1] and "resumable" in lines[-1]
    manifest = RunStore(out).read_manifest()
    assert manifest["status"] == "stopped"
    done = keys(out)
    assert 0 < len(done) == len(set(done)) < 30
    calls = read_jsonl(out / "llm_calls.jsonl").records
    assert len(calls) <= 40  # the hard cap holds inside episodes too
    episodes, _ = RunStore(out).read_episodes()
    abandoned = manifest.get("spend_abandoned", {}).get("calls", 0)
    assert sum(e.llm_queries for e in episodes) + abandoned == len(calls)
    # same command again: still over budget, nothing runs, nothing breaks
    assert cli("matrix", str(budget_path), "--out", str(out), "--no-report").returncode == 2
    assert keys(out) == done
    budget_path.write_text(SPEC + "budget: {max_llm_calls: 100000}\n")  # budgets are not results
    assert cli("matrix", str(budget_path), "--out", str(out), "--no-report").returncode == 0
    assert len(set(keys(out))) == len(keys(out)) == 30
    assert results(out) == results(reference)


def test_process_pool_and_ray_give_the_serial_results(meetgrid, tmp_path):
    import ray

    spec = load_spec(write_spec(tmp_path, SPEC.replace("0-9", "0-3")))
    serial, pool, rayed = tmp_path / "serial", tmp_path / "pool", tmp_path / "ray"
    run_matrix(spec, serial)
    assert run_matrix(spec, pool, executor="process", workers=2).status == "complete"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert run_matrix(spec, rayed, executor="ray", workers=2).status == "complete"
    finally:
        ray.shutdown()
    assert results(pool) == results(serial) == results(rayed)
    assert sorted(keys(pool)) == sorted(keys(serial)) == sorted(keys(rayed))


class FakeOpenAI(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that counts the requests it answers."""

    count = 0
    plans = ("EXECUTE\nNAME Alice ACTION move south\nNAME Bob ACTION move north",
             "EXECUTE\nNAME Alice ACTION move east\nNAME Bob ACTION wait",
             "EXECUTE\nNAME Alice ACTION wait\nNAME Bob ACTION move west")

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):  # chat only: the probe learns so
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        type(self).count += 1
        text = self.plans[len(json.dumps(body["messages"])) % len(self.plans)]
        reply = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_cached_rerun_makes_zero_llm_calls_and_reports_identical_numbers(
    meetgrid, tmp_path, monkeypatch
):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = f"openai-compat:http://127.0.0.1:{server.server_port}/v1#fake-model"
        spec = parse_spec({"name": "cache", "envs": ["meetgrid/meet-v0"], "seeds": [0, 1, 2],
                           "planners": ["llm/central-v0"], "llms": [llm]})
        first = tmp_path / "first"
        run_matrix(spec, first)
        calls = FakeOpenAI.count
        assert calls > 0
        run_matrix(spec, first)  # the finished matrix again: nothing to do
        second = tmp_path / "second"
        run_matrix(spec, second)  # every episode again, into a new directory
        assert FakeOpenAI.count == calls  # zero LLM calls reached the endpoint
        log = read_jsonl(second / "llm_calls.jsonl").records
        assert log and all(r["cache_hit"] for r in log)
        assert results(second)["cells"] == results(first)["cells"]
    finally:
        server.shutdown()


def test_a_crashing_planner_is_recorded_retried_and_replaced_once_fixed(meetgrid, tmp_path):
    from coopbench import planners
    from coopbench.planners.baseline import ExpertPlanner

    class Crashing(ExpertPlanner):
        def act(self, env):
            raise RuntimeError("planner bug")

    planners.registry.ids()
    planners.register("meetgrid/flaky-v0", Crashing, caps={"needs_llm": False})
    spec = parse_spec({"name": "flaky", "envs": ["meetgrid/meet-v0"], "seeds": [0, 1],
                       "planners": ["meetgrid/flaky-v0"]})
    out = tmp_path / "run"
    outcome = run_matrix(spec, out)  # every episode failed: so did the run, and it says why
    assert outcome.status == "failed" and "RuntimeError: planner bug" in outcome.detail
    assert RunStore(out).read_manifest()["status_detail"] == outcome.detail
    episodes, _ = RunStore(out).read_episodes()
    assert [e.error for e in episodes] == ["RuntimeError: planner bug"] * 2
    assert results(out)["cells"][0]["errors"] == 2
    planners.register("meetgrid/flaky-v0", ExpertPlanner, caps={"needs_llm": False})  # fixed
    assert run_matrix(spec, out).ran == 2  # errored episodes are played again
    cell = results(out)["cells"][0]
    assert cell["errors"] == 0 and cell["success_rate"] == 1.0 and cell["seeds"] == 2


def test_a_dying_worker_process_stops_the_matrix_cleanly(meetgrid, tmp_path):
    from coopbench import planners
    from coopbench.planners.baseline import ExpertPlanner

    class Dying(ExpertPlanner):
        def act(self, env):
            if self.rng.random() < 0.5:
                os._exit(3)  # what an OOM kill or a native crash looks like from outside
            return super().act(env)

    planners.registry.ids()
    planners.register("meetgrid/dying-v0", Dying, caps={"needs_llm": False})
    spec = parse_spec({"name": "dying", "envs": ["meetgrid/meet-v0"], "seeds": list(range(8)),
                       "planners": ["meetgrid/dying-v0"]})
    out = tmp_path / "run"
    with pytest.raises(CoopbenchError, match="a worker process died"):
        run_matrix(spec, out, executor="process", workers=2)
    assert RunStore(out).read_manifest()["status"] == "failed"
    before = keys(out)
    assert len(before) == len(set(before)) < 8
    planners.register("meetgrid/dying-v0", ExpertPlanner, caps={"needs_llm": False})
    assert run_matrix(spec, out, executor="process", workers=2).status == "complete"
    assert sorted(keys(out)) == sorted(set(keys(out))) and len(keys(out)) == 8


def children_of(pid):
    found = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_of_a_process_pool_run_leaves_no_workers_and_resumes(meetgrid, tmp_path):
    path = write_spec(tmp_path, SPEC.replace("0-9", "0-5"))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coopbench", "matrix", str(path), "--out", str(out),
         "--workers", "2", "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    episodes_file = out / "episodes.jsonl"
    while proc.poll() is None and not (
        episodes_file.exists() and episodes_file.read_bytes().count(b"\n") >= 3
    ):
        time.sleep(0.005)
    workers = children_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(workers) == 2
    deadline = time.monotonic() + 60
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers)  # orphaned workers notice and exit
    assert cli("matrix", str(path), "--out", str(out), "--workers", "2",
               "--no-report").returncode == 0
    done = keys(out)
    assert len(done) == len(set(done)) == 18


def test_ctrl_c_stops_with_one_line_and_marks_the_run_interrupted(meetgrid, tmp_path):
    path = write_spec(tmp_path, SPEC.replace("0-9", "0-199"))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "coopbench", "matrix", str(path), "--out", str(out),
         "--workers", "2", "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # A terminal's Ctrl-C: the suite itself may run as a background job (`make test &`),
        # whose children inherit an ignored SIGINT, as the shell's rules say.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    episodes_file = out / "episodes.jsonl"
    while proc.poll() is None and not (
        episodes_file.exists() and episodes_file.read_bytes().count(b"\n") >= 2
    ):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted; finished episodes")
    assert "Traceback" not in stderr
    assert RunStore(out).read_manifest()["status"] == "interrupted"
    assert len(keys(out)) < 600
    assert cli("matrix", str(path), "--out", str(out), "--no-report").returncode == 0
    assert len(set(keys(out))) == len(keys(out)) == 600
