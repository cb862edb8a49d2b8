"""Reports flag a cell whose episodes are all one episode (seeds that do not vary it)."""

from __future__ import annotations

from coopbench import envs
from coopbench.core.types import EpisodeResult
from coopbench.episode import run_episode
from coopbench.planners.baseline import ExpertPlanner
from coopbench.reporting.summary import RunData, summarise
from coopbench.reporting.tables import format_markdown


def _episodes(env_id: str, seeds: range, **kwargs) -> list[EpisodeResult]:
    env = envs.make(env_id, **kwargs)
    return [run_episode(env, ExpertPlanner(), seed=s, env_id=env_id,
                        planner_id="baseline/expert-v0", llm_spec="none",
                        cell=f"{env_id}|baseline/expert-v0|none|seed={s}") for s in seeds]


def test_a_cell_of_identical_episodes_is_flagged():
    same = _episodes("roco/sort-level1-v0", range(3), jitter=0.0)
    assert len({e.trajectory for e in same}) == 1 and same[0].trajectory
    varied = _episodes("roco/sort-level2-v0", range(3))  # default jitter: seeds differ
    assert len({e.trajectory for e in varied}) == 3
    summary = summarise(RunData(episodes=same + varied))
    flags = {r["env"]: r["identical_episodes"] for r in summary["cells"]}
    assert flags == {"roco/sort-level1-v0": 3, "roco/sort-level2-v0": 0}
    note = ("≡ roco/sort-level1-v0 × baseline/expert-v0: 3 episodes identical: seeds may not "
            "vary the episode")
    assert note in summary["notes"]
    text = format_markdown(summary)
    assert f"> {note}" in text
    assert "| roco/sort-level1-v0 | baseline/expert-v0 | 3 ≡ |" in text
    assert "| roco/sort-level2-v0 | baseline/expert-v0 | 3 |" in text


def test_identical_means_every_recorded_number_and_needs_two_seeds():
    def record(seed: int, **changes) -> EpisodeResult:
        base = dict(cell=f"c|seed={seed}", env="e", planner="p", llm="none", seed=seed,
                    success=True, return_=1.0, interaction_steps=4, wall_s=float(seed))
        return EpisodeResult(**{**base, **changes})

    def flag(episodes: list[EpisodeResult]) -> int:
        return summarise(RunData(episodes=episodes))["cells"][0]["identical_episodes"]

    assert flag([record(0), record(1), record(2)]) == 3  # wall time and seed do not count
    assert flag([record(0), record(1, interaction_steps=5)]) == 0
    assert flag([record(0, trajectory="a"), record(1, trajectory="b")]) == 0
    assert flag([record(0), record(0, episode=1)]) == 0  # one seed: nothing to vary
    assert flag([record(0)]) == 0
