"""`coopbench run`: episodes of one env × planner × LLM over a list of seeds, resumable."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import CriticRequest, EpisodeResult, StepRecord
from coopbench.episode import run_episode
from coopbench.planners.base import Planner
from coopbench.runner.store import RunStore

MAX_SEEDS = 1_000_000  # per run or matrix; more is a typo, and would not fit in memory
MAX_EPISODES = 1_000_000  # episodes one run or matrix may plan
SEED_LIMIT = 2**32  # seeds are 32-bit, as numpy's and the envs' seeding expect


class SeedsError(CoopbenchError):
    """A seed list that cannot be used; `why` is the reason without the option name."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"bad --seeds {text!r}: {why}")
        self.why = why


def check_seed_count(count: int) -> str | None:
    """Why `count` seeds are too many, or None."""
    if count > MAX_SEEDS:
        return f"{count:,} seeds; at most {MAX_SEEDS:,} per run"
    return None


def seed_ranges(text: str) -> list[range]:
    """`"0-2,7"` -> [range(0, 3), range(7, 8)], checked but not expanded (cheap at any size)."""
    ranges: list[range] = []
    count = 0
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise SeedsError(text, "use a range like 0-9 or a list like 0,3,7") from None
        if last < first:
            raise SeedsError(text, f"the range {part} runs backwards")
        count += last - first + 1
        too_many = check_seed_count(count)
        if too_many:
            raise SeedsError(text, too_many)
        if last >= SEED_LIMIT:
            raise SeedsError(text, f"seeds must be below 2**32 ({SEED_LIMIT:,})")
        ranges.append(range(first, last + 1))
    if not ranges:
        raise SeedsError(text, "need at least one non-negative seed")
    return ranges


def parse_seeds(text: str) -> list[int]:
    """`"0-2"` -> [0, 1, 2]; `"0,5,7"` -> [0, 5, 7]; ranges and lists may mix (bounded by
    `MAX_SEEDS`, counted before anything is expanded)."""
    return [seed for r in seed_ranges(text) for seed in r]


def check_episode_count(count: int, what: str) -> None:
    """Refuse to plan more than `MAX_EPISODES` episodes (before any task is built)."""
    if count > MAX_EPISODES:
        raise CoopbenchError(f"{what}: {count:,} episodes; at most {MAX_EPISODES:,} per run "
                             "(split it into several run directories)")


def cell_key(env_id: str, planner_id: str, llm_spec: str, seed: int) -> str:
    return f"{env_id}|{planner_id}|{llm_spec}|seed={seed}"


@dataclass
class EpisodeTask:
    env_id: str
    planner_id: str
    llm_spec: str
    seed: int
    episode: int = 0
    env_kwargs: dict[str, Any] | None = None
    planner_kwargs: dict[str, Any] | None = None
    max_steps: int | None = None  # overrides the env's interaction-step cap
    critic_checkpoint: str | None = None  # set by runner.critics: the critic resolved for it

    @property
    def cell(self) -> str:
        return cell_key(self.env_id, self.planner_id, self.llm_spec, self.seed)

    @property
    def key(self) -> tuple[str, int]:
        return (self.cell, self.episode)


def build_llm(planner_id: str, llm_spec: str, store: RunStore | None) -> Any:
    """The LLM for a planner that needs one (imported lazily: most tests never load a model)."""
    if not planners.registry.spec(planner_id).caps.needs_llm:
        return None
    from coopbench import llm as llm_layer

    return llm_layer.make(llm_spec, call_log=store.llm_calls_path if store else None)


_CRITICS: dict[tuple[str, CriticRequest], Any] = {}  # loaded once per process


def critic_for(task: EpisodeTask, env: Any, planner: Planner) -> Any:
    """The critic the planner asks for, from the checkpoint the runner resolved for the task."""
    request = planner.critic_request()
    if request is None:
        return None
    from coopbench.critics.resolve import config_key, locate

    if task.critic_checkpoint is not None:
        request = dataclasses.replace(request, source=task.critic_checkpoint)
    key = (config_key(env), request)
    if key not in _CRITICS:
        env.reset(seed=task.seed)  # loading checks the checkpoint against a live state
        _CRITICS[key] = locate(env, request).critic
    return _CRITICS[key]


def run_task(
    task: EpisodeTask,
    store: RunStore | None = None,
    llm: Any = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> EpisodeResult:
    """Build env and planner, play one episode; transcripts go to `on_step` or the store."""
    env = envs.make(task.env_id, **(task.env_kwargs or {}))
    if task.max_steps is not None:
        env.max_steps = task.max_steps
    planner = planners.make(task.planner_id, **(task.planner_kwargs or {}))
    if llm is None:
        llm = build_llm(task.planner_id, task.llm_spec, store)
    if on_step is None and store is not None:

        def on_step(record: StepRecord) -> None:
            entry = {"cell": task.cell, "episode": task.episode, **record.to_json()}
            store.append_transcript(entry)

    try:
        return run_episode(
            env, planner, seed=task.seed, llm=llm, env_id=env.spec.id,
            planner_id=planner.spec.id, llm_spec=task.llm_spec, cell=task.cell,
            episode=task.episode, on_step=on_step, critic=critic_for(task, env, planner),
        )
    finally:
        env.close()


def pending_tasks(tasks: Sequence[EpisodeTask], store: RunStore) -> list[EpisodeTask]:
    """Tasks whose episode is not yet in `episodes.jsonl` (resume = skip what is done)."""
    done = {(e.cell, e.episode) for e in store.read_episodes()[0] if e.error is None}
    return [t for t in tasks if t.key not in done]
