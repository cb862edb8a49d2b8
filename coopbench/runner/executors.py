"""Where episodes run: in this process, in a process pool, or as Ray tasks.

Every executor has the same small interface — `submit(task, allowance)`, `next_done()`,
`close()` — so the matrix keeps a sliding window of episodes in flight and hands each the
budget that is left when it starts. Workers never write `episodes.jsonl`: they return an
`Outcome` and the matrix process appends it, so the file has one writer. Workers do append
their episode's steps to `transcripts.jsonl` (under a lock file) and their calls to
`llm_calls.jsonl` (the LLM layer's call log), so a Ray cluster given by address needs the run
directory on a filesystem its nodes share.

The process pool forks its workers when it is created, before the live display starts any
thread, and the matrix process itself never imports a simulator; forking is therefore safe
and needs no re-import of `__main__`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from coopbench.core.errors import CoopbenchError, StorageFull, storage_full
from coopbench.core.secrets import redact
from coopbench.core.types import EpisodeResult, StepRecord
from coopbench.runner.budget import BudgetExceeded, EndpointSlots, MeteredLLM, Spend
from coopbench.runner.single import EpisodeTask, llm_for, run_task
from coopbench.runner.spec import Budget
from coopbench.runner.store import LLM_CALLS, RunStore

EXECUTORS = ("serial", "process", "ray")


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs besides the task (picklable)."""

    run_dir: str
    llm_cache: bool = True
    llm_concurrency: int | None = None  # None: no cross-process limit (serial executor)


@dataclass
class Outcome:
    """One task's end: a result line, or why it was abandoned, or a fatal error."""

    key: tuple[str, int]
    result: dict[str, Any] | None = None  # EpisodeResult.to_json()
    spent: Spend = field(default_factory=Spend)
    abandoned: str | None = None  # the budget ran out inside the episode
    fatal: str | None = None  # a user-fixable error (CoopbenchError): stop the matrix
    storage_full: bool = False  # the fatal error is a full or read-only disk


def execute(task: EpisodeTask, allowance: Budget | None, ctx: WorkerContext) -> Outcome:
    """Play one episode wherever this runs; never raises (errors come back in the Outcome)."""
    steps: list[dict[str, Any]] = []
    metered: MeteredLLM | None = None
    try:
        model = llm_for(task, Path(ctx.run_dir) / LLM_CALLS, ctx.llm_cache)
        if model is not None:
            slots = None
            if ctx.llm_concurrency is not None and not getattr(model, "simulated", False):
                slots = EndpointSlots(Path(ctx.run_dir) / ".locks", model.model_id,
                                      ctx.llm_concurrency)
            metered = MeteredLLM(model, allowance, slots)

        def on_step(record: StepRecord) -> None:
            steps.append({"cell": task.cell, "episode": task.episode, **record.to_json()})

        result = run_task(task, llm=metered, on_step=on_step)
        _append_transcripts(Path(ctx.run_dir), steps)
    except BudgetExceeded as exc:
        return Outcome(task.key, spent=metered.spent if metered else Spend(), abandoned=str(exc))
    except CoopbenchError as exc:  # a full disk among them: the worker's writes failed too
        return Outcome(task.key, spent=metered.spent if metered else Spend(),
                       fatal=redact(str(exc)), storage_full=isinstance(exc, StorageFull))
    except Exception as exc:  # a bug in an env or planner: record it, keep the matrix going
        last = redact(" ".join(traceback.format_exception(exc)[-1].split()))  # one line
        spent = metered.spent if metered else Spend()
        result = EpisodeResult(  # keeps what the failed attempt spent, for the budget
            cell=task.cell, env=task.env_id, planner=task.planner_id, llm=task.llm_spec,
            seed=task.seed, episode=task.episode, error=last, llm_queries=spent.calls,
            tokens_in=spent.tokens, cost_usd=spent.cost_usd,
        )
    spent = metered.spent if metered else Spend()
    result.node = _node()
    return Outcome(task.key, result=result.to_json(), spent=spent)


def _node() -> str:
    """Where this runs: the Ray node id in a Ray worker (hosts may share a name), else the
    host name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def _append_transcripts(run_dir: Path, steps: list[dict[str, Any]]) -> None:
    """Workers write their episode's steps (one locked append) before reporting the result.

    Lines of an episode whose result never reaches episodes.jsonl are dropped on resume.
    """
    if not steps:
        return
    try:
        (run_dir / ".locks").mkdir(exist_ok=True)
        with FileLock(str(run_dir / ".locks" / "transcripts.lock")):
            RunStore(run_dir).append_transcripts(steps)
    except OSError as exc:  # creating the lock file on a full disk
        raise storage_full(exc, run_dir / ".locks") or exc from None


class Executor(Protocol):
    workers: int

    def submit(self, task: EpisodeTask, allowance: Budget | None) -> None: ...
    def next_done(self) -> Outcome: ...
    def close(self) -> None: ...


class SerialExecutor:
    """Runs each task in this process when its result is asked for."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.workers = 1
        self._queue: deque[tuple[EpisodeTask, Budget | None]] = deque()

    def submit(self, task: EpisodeTask, allowance: Budget | None) -> None:
        self._queue.append((task, allowance))

    def next_done(self) -> Outcome:
        task, allowance = self._queue.popleft()
        return execute(task, allowance, self.ctx)

    def close(self) -> None:
        self._queue.clear()


def _worker_init(workers: int = 1) -> None:
    """Ctrl-C reaches the whole process group: only the matrix process handles it. A worker
    whose matrix process died (SIGKILL) exits within a second instead of lingering. An
    embedded model loaded here gets its share of the cores (the pool's workers load theirs
    together)."""
    from coopbench.llm.local import share_cores_with

    share_cores_with(workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's: `close()` terminates us
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="coopbench-parent-watch", daemon=True).start()


class ProcessExecutor:
    """A pool of forked worker processes (each keeps its LLM loaded between episodes).

    A worker that dies (killed, out of memory, a crash in native code) breaks the pool; the
    matrix then stops with one line and the run directory stays resumable.
    """

    def __init__(self, ctx: WorkerContext, workers: int) -> None:
        self.ctx = ctx
        self.workers = workers
        self._futures: dict[Future, EpisodeTask] = {}
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init, initargs=(workers,),
        )
        self._pool.submit(_ready).result()  # fork every worker now, before any display thread
        # the pool's own table of workers can be emptied by its manager thread while one of
        # them is still alive; `close` stops the workers from this list instead
        self._workers = list((getattr(self._pool, "_processes", None) or {}).values())

    def submit(self, task: EpisodeTask, allowance: Budget | None) -> None:
        self._futures[self._pool.submit(execute, task, allowance, self.ctx)] = task

    def next_done(self) -> Outcome:
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        future = done.pop()
        task = self._futures.pop(future)
        try:
            return future.result()
        except BrokenProcessPool:
            return Outcome(task.key, fatal=(
                "a worker process died (killed, out of memory or a crash in native code); "
                "finished episodes are saved: run the same command again to resume"
            ))

    def close(self) -> None:
        if not self._futures:  # nothing in flight: a normal end
            self._pool.shutdown(wait=True)
            return
        # stop the episodes still in flight (the executor has no public terminate). A worker
        # stopped while it held the result queue's lock leaves that lock taken: a sibling
        # then blocks forever sending its result, and the pool's manager thread (joined at
        # interpreter exit) with it. So every worker is stopped, and killed if it lingers.
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in self._workers:
            if process.is_alive():
                process.terminate()
        for process in self._workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        self._futures.clear()


def _ready() -> bool:
    return True


class RayExecutor:
    """Each episode is a Ray task on a local instance or the cluster at `address`."""

    def __init__(self, ctx: WorkerContext, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise CoopbenchError(
                "the Ray executor needs Ray: pip install 'coopbench[ray]'"
            ) from None
        self.ray = ray
        self.ctx = ctx
        self.workers = workers
        self._owned = not ray.is_initialized()
        if self._owned and address:
            _check_reachable(address)
        if self._owned:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
                else:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                             logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local instance"
                raise CoopbenchError(f"cannot start Ray on {where}: {exc}") from None
        self._remote = ray.remote(num_cpus=1)(execute)
        self._pending: list[Any] = []

    def submit(self, task: EpisodeTask, allowance: Budget | None) -> None:
        self._pending.append(self._remote.remote(task, allowance, self.ctx))

    def next_done(self) -> Outcome:
        ready, self._pending = self.ray.wait(self._pending, num_returns=1)
        return self.ray.get(ready[0])

    def close(self) -> None:
        for ref in self._pending:
            with contextlib.suppress(Exception):  # already finished or gone with its node
                self.ray.cancel(ref, force=True)
        self._pending = []
        if self._owned:
            self.ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, where Ray itself would retry for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except ValueError:
        message = f"bad --ray-address {address!r}: use host:port or ray://host:port"
        raise CoopbenchError(message) from None
    except OSError as exc:
        raise CoopbenchError(f"cannot reach a Ray cluster at {address}: {exc}") from None


def make_executor(
    kind: str, ctx: WorkerContext, workers: int, ray_address: str | None = None
) -> Executor:
    if kind == "serial":
        return SerialExecutor(ctx)
    if kind == "process":
        return ProcessExecutor(ctx, workers)
    if kind == "ray":
        return RayExecutor(ctx, workers, ray_address)
    raise CoopbenchError(f"unknown executor {kind!r}; allowed: {', '.join(EXECUTORS)}")
