"""One way into a run (issue 27): the runner builds a planner once per episode task."""

import pickle
from collections import Counter

import yaml

from coopbench.planners.base import Planner
from coopbench.runner.critic_resolution import request_of
from coopbench.runner.matrix import run_matrix
from coopbench.runner.single import EpisodeTask, assemble
from coopbench.runner.spec import parse_spec
from coopbench.runner.store import RunStore

SPEC = """
name: builds
envs: [roco/sort-level1-v0]
planners: [read/read-j-scored-v0, llm/central-v0]
llms: [sim]
seeds: 0-1
caps: {max_steps: 2}
"""


def test_a_matrix_builds_each_episode_task_s_planner_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    built: list[str] = []
    real = Planner.__init__

    def counting(self, **config):
        built.append(type(self).__name__)
        real(self, **config)

    monkeypatch.setattr(Planner, "__init__", counting)
    run_matrix(parse_spec(yaml.safe_load(SPEC)), tmp_path / "run")
    episodes, _ = RunStore(tmp_path / "run").read_episodes()
    assert len(episodes) == 4 and all(e.error is None for e in episodes)
    # the ReAd planner's critic request is read from the planner its first episode plays
    # with, not from one built only to ask (serial, the default executor: a process or Ray
    # worker builds its own, since a task carries no planner across processes)
    assert len(built) == len(episodes)
    assert sorted(Counter(built).values()) == [2, 2]  # each planner: one per seed


def test_the_planner_built_ahead_stays_in_its_process(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path / "cache"))
    task = EpisodeTask("roco/sort-level1-v0", "read/read-j-scored-v0", "sim", 0)
    request = request_of(task)
    assert request is not None and task.planner is not None  # kept for the episode
    copy = pickle.loads(pickle.dumps(task))  # what a process or Ray worker receives
    assert copy.planner is None and copy == task  # the worker builds its own
    planner = task.planner
    episode = assemble(task)
    try:
        assert episode.planner is planner and task.planner is None  # the episode took it
    finally:
        episode.close()
