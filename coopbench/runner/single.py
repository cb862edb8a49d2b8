"""One episode on the runner side: its task, and the one place it is assembled and played.

`coopbench run`, `matrix` and `play` all build an episode through `assemble`: the env, the
planner through `planner_for` (built once per task: the one the runner asked for its critic
request is the one the episode plays with), the LLM through `build_llm` and the critic loaded
from the checkpoint the runner resolved (`runner.critic_resolution`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coopbench import envs, planners
from coopbench.core.types import EpisodeResult, StepRecord
from coopbench.episode import run_episode
from coopbench.planners.base import Planner
from coopbench.runner.store import RunStore


def cell_key(env_id: str, planner_id: str, llm_spec: str, seed: int,
             decoding: str = "auto", critic_data: str = "") -> str:
    """A cell's key; an explicit decoding or a critic data budget (axes of the spec) is part
    of it, `auto` and no budget are not, so runs from before the axes keep their keys."""
    how = "" if decoding == "auto" else f"|decoding={decoding}"
    data = f"|critic_data={critic_data}" if critic_data else ""
    return f"{env_id}|{planner_id}|{llm_spec}{how}{data}|seed={seed}"


def requested_decoding(cell: str) -> str:
    """The decoding a cell key asks for (`auto` unless the key names one)."""
    _, found, rest = cell.partition("|decoding=")
    return rest.partition("|")[0] if found else "auto"


def requested_critic_data(cell: str) -> str:
    """The critic data budget a cell key names ("" when none)."""
    _, found, rest = cell.partition("|critic_data=")
    return rest.rpartition("|seed=")[0] if found else ""


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
    critic_checkpoint: str | None = None  # set by runner.critic_resolution for the task
    decoding: str = "auto"  # the spec's decoding for this cell (planner kwargs carry it)
    critic_data: str = ""  # the cell's critic data budget (critics/budget.py label), if any
    # built ahead of the episode by `planner_for` (the runner reads its critic request), then
    # taken by `assemble`; never pickled: a task run in another process builds its own there
    planner: Planner | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "planner": None}

    @property
    def cell(self) -> str:
        return cell_key(self.env_id, self.planner_id, self.llm_spec, self.seed, self.decoding,
                        self.critic_data)

    @property
    def key(self) -> tuple[str, int]:
        return (self.cell, self.episode)


_MODELS: dict[tuple[str, str, bool], Any] = {}  # the model this process keeps loaded


def build_llm(llm_spec: str, call_log: Path | None, cache: bool = True) -> Any:
    """The one place an episode's LLM is built: kept loaded for the next episode of the same
    spec, call log and cache setting (a process serves one run at a time, so only the latest
    is kept). Imported lazily: most tests never load a model."""
    key = (llm_spec, str(call_log), cache)
    if key not in _MODELS:
        from coopbench import llm as llm_layer

        _MODELS.clear()
        _MODELS[key] = llm_layer.make(llm_spec, call_log=call_log,
                                      cache=None if cache else False)
    return _MODELS[key]


def llm_for(task: EpisodeTask, call_log: Path | None, cache: bool = True) -> Any:
    """The task's LLM, or None for a planner that needs none."""
    if not planners.registry.spec(task.planner_id).caps.needs_llm:
        return None
    return build_llm(task.llm_spec, call_log, cache)


def planner_for(task: EpisodeTask) -> Planner:
    """The task's planner, built once and kept on the task until its episode takes it, so
    asking it for its critic request before the run builds no second one."""
    if task.planner is None:
        task.planner = planners.make(task.planner_id, **(task.planner_kwargs or {}))
    return task.planner


_CRITICS: dict[tuple[str, str, str], Any] = {}  # checkpoints loaded once per process


def critic_for(task: EpisodeTask, env: Any, planner: Planner) -> Any:
    """The critic the planner asks for, loaded from the checkpoint the runner resolved.

    A task run on its own (a script, `play`) has none resolved yet: it is resolved here, through
    the runner's one resolution path (`runner.critic_resolution`), once per env configuration.
    """
    request = planner.critic_request()
    if request is None:
        return None
    from coopbench.critics.critic import Critic
    from coopbench.critics.resolve import config_key

    if task.critic_checkpoint is None:
        from coopbench.runner.critic_resolution import resolve_for  # critics imports this module

        task.critic_checkpoint = resolve_for(task, request)["checkpoint"]
    key = (config_key(env), task.critic_checkpoint, request.device)
    if key not in _CRITICS:
        env.reset(seed=task.seed)  # loading checks the checkpoint against a live state
        _CRITICS[key] = Critic.load(task.critic_checkpoint, env, request.device)
    return _CRITICS[key]


@dataclass
class Episode:
    """One assembled episode: its env, planner, LLM and critic, ready to play."""

    task: EpisodeTask
    env: Any
    planner: Planner
    llm: Any
    critic: Any

    def play(self, on_step: Callable[[StepRecord], None] | None = None,
             on_reset: Callable[[], None] | None = None) -> EpisodeResult:
        task = self.task
        return run_episode(
            self.env, self.planner, seed=task.seed, llm=self.llm, env_id=self.env.spec.id,
            planner_id=self.planner.spec.id, llm_spec=task.llm_spec, cell=task.cell,
            episode=task.episode, on_step=on_step, on_reset=on_reset, critic=self.critic,
        )

    def close(self) -> None:
        self.env.close()


def assemble(task: EpisodeTask, llm: Any = None, *, call_log: Path | None = None,
             **env_options: Any) -> Episode:
    """The one place an episode is put together (`run`, `matrix` and `play` all come here):
    the env, the task's planner (`planner_for`; the episode takes it, so a task assembled
    again gets a fresh one), its LLM (`llm`, else `llm_for`) and its critic.
    `env_options` are the command's own env settings (`play`'s render mode)."""
    env = envs.make(task.env_id, **(task.env_kwargs or {}), **env_options)
    try:
        if task.max_steps is not None:
            env.max_steps = task.max_steps
        planner, task.planner = planner_for(task), None
        if llm is None:
            llm = llm_for(task, call_log)
        return Episode(task, env, planner, llm, critic_for(task, env, planner))
    except BaseException:
        env.close()
        raise


def run_task(
    task: EpisodeTask,
    llm: Any = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> EpisodeResult:
    """Assemble and play one episode; each step goes to `on_step`."""
    episode = assemble(task, llm)
    try:
        return episode.play(on_step)
    finally:
        episode.close()


def pending_tasks(tasks: Sequence[EpisodeTask], store: RunStore) -> list[EpisodeTask]:
    """Tasks whose episode is not yet in `episodes.jsonl` (resume = skip what is done)."""
    done = {(e.cell, e.episode) for e in store.read_episodes()[0] if e.error is None}
    return [t for t in tasks if t.key not in done]
