"""A matrix on a multi-node Ray cluster (issue #25, 7), as users who outgrow one machine run it.

Two Ray nodes on 127.0.0.1 (Ray's own `cluster_utils`: a head and a worker node, each a
raylet with one CPU), the matrix driven by `coopbench matrix --executor ray --ray-address`,
the run directory on the filesystem both nodes share. Every episode records the node that
ran it; episodes run on both nodes; and with the worker node killed mid-run (its raylet and
workers SIGKILLed) the matrix still finishes every episode exactly once.

The planner sleeps in `reset` so that episodes overlap and a kill finds work in flight; it
reaches the Ray workers as a real plug-in would, through an entry point on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from coopbench.runner.store import RunStore

cluster_utils = pytest.importorskip("ray.cluster_utils")

SLOW_MODULE = """\
import time
from coopbench.planners.baseline import ExpertPlanner

class Slow(ExpertPlanner):
    def reset(self, env, llm, rng):
        time.sleep(float({sleep!r}))
        super().reset(env, llm, rng)

def register(registry):
    registry.register("meetgrid/slow-v0", "slowtest:Slow", description="sleeps, then expert",
                      caps={{"needs_llm": False, "needs_critic": False, "mode": "joint"}})
"""

SPEC = """\
name: cluster
envs: [meetgrid/meet-v0]
planners: [meetgrid/slow-v0]
seeds: 0-{last}
execution: {{executor: ray, workers: 2}}
"""

NODE = {"num_cpus": 1, "object_store_memory": 75 * 1024 * 1024, "node_ip_address": "127.0.0.1"}
# notice a dead node in about a second, not Ray's default of half a minute
FAST_HEALTH = {"health_check_period_ms": 200, "health_check_failure_threshold": 5,
               "health_check_initial_delay_ms": 0}


def install_slow_planner(site, sleep: float) -> None:
    """A plug-in as pip would leave it: a module and its dist-info with the entry point."""
    site.mkdir()
    (site / "slowtest.py").write_text(SLOW_MODULE.format(sleep=sleep))
    info = site / "slowtest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowtest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[coopbench.planners]\nslow = slowtest:register\n")


@pytest.fixture
def cluster(meetgrid, tmp_path, monkeypatch):
    """Head + worker node; the env (PYTHONPATH with both plug-ins) reaches every Ray worker."""
    install_slow_planner(tmp_path / "site", sleep=0.6)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'site'}{os.pathsep}{os.environ['PYTHONPATH']}")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    # this machine's "node IP" is loopback: else the driver rewrites 127.0.0.1 in the address
    # to the host's outward IP, where nothing listens (and no traffic may go)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    started = time.perf_counter()
    made = cluster_utils.Cluster(initialize_head=True, head_node_args={
        **NODE, "include_dashboard": False, "_system_config": FAST_HEALTH})
    worker = made.add_node(**NODE)
    made.wait_for_nodes()
    print(f"\ncluster of 2 nodes up in {time.perf_counter() - started:.1f} s")
    yield made, worker
    made.shutdown()


def matrix(spec, out, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coopbench", "matrix", str(spec), "--out", str(out),
         "--no-report", "--ray-address", address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def episodes(out):
    found, bad = RunStore(out).read_episodes()
    assert bad == []
    return found


def test_a_matrix_spreads_over_two_nodes_and_survives_losing_one(cluster, tmp_path):
    made, worker = cluster
    head_id, worker_id = made.head_node.node_id, worker.node_id
    spec = tmp_path / "spec.yaml"

    spec.write_text(SPEC.format(last=5))
    started = time.perf_counter()
    proc = matrix(spec, tmp_path / "both", made.address)
    stdout, stderr = proc.communicate(timeout=300)
    print(f"6 episodes on 2 nodes: {time.perf_counter() - started:.1f} s")
    assert proc.returncode == 0, stderr
    found = episodes(tmp_path / "both")
    nodes = Counter(e.node for e in found)
    print(f"episodes per node: {dict(nodes)}")
    assert set(nodes) == {head_id, worker_id}  # both nodes ran episodes, and said so
    assert len({(e.cell, e.episode) for e in found}) == len(found) == 6
    transcripts = (tmp_path / "both" / "transcripts.jsonl").read_text().splitlines()
    # every episode's steps, written by the worker that ran it into the shared directory
    assert {json.loads(line)["cell"] for line in transcripts} == {e.cell for e in found}

    spec.write_text(SPEC.format(last=11))
    out = tmp_path / "killed"
    started = time.perf_counter()
    proc = matrix(spec, out, made.address)
    while not any(e.node == worker_id for e in _safe(out)):  # the worker node is busy
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.1)
    made.remove_node(worker, allow_graceful=False)  # SIGKILL its raylet and workers
    killed_at = len(_safe(out))
    stdout, stderr = proc.communicate(timeout=300)
    print(f"12 episodes, worker node killed after {killed_at}: "
          f"{time.perf_counter() - started:.1f} s")
    assert proc.returncode == 0, stderr
    found = episodes(out)
    keys = Counter((e.cell, e.episode) for e in found)
    assert len(keys) == 12 and set(keys.values()) == {1}  # every episode exactly once
    assert all(e.error is None for e in found)
    assert killed_at < 12 and {e.node for e in found} == {head_id, worker_id}
    manifest = RunStore(out).read_manifest()
    assert manifest["status"] == "complete" and manifest["invocations"][-1]["episodes_run"] == 12


def _safe(out) -> list:
    try:
        return RunStore(out).read_episodes()[0]
    except Exception:  # the directory or file is not there yet
        return []
