"""Run a matrix into a run directory: resumable, budgeted, on any executor.

Resume rule: an episode is done iff its line is in `episodes.jsonl` without an error. Running
the same spec into the same directory again plays only the missing episodes, so a killed run
(even SIGKILL) loses at most the episodes in flight. A directory whose spec fingerprint differs
(a cap or an env/planner option changed) is refused with the keys that changed.

The directory is locked for the whole run (one writer at a time, see `lock`), lines an
earlier run could not finish or that were damaged since are moved aside first, and a full
disk stops the run at once with the manifest marked `interrupted`.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coopbench.core.errors import ConfigError, CoopbenchError, StorageFull
from coopbench.core.io import read_lines, replace_lines
from coopbench.core.types import EpisodeResult
from coopbench.llm.config import register_keys
from coopbench.runner import llm_info, readback
from coopbench.runner.budget import BudgetExceeded, Spend
from coopbench.runner.cells import Plan, expand
from coopbench.runner.critic_resolution import prepare_critics
from coopbench.runner.executors import WorkerContext, make_executor
from coopbench.runner.lock import run_lock, started
from coopbench.runner.single import EpisodeTask, requested_critic_data, requested_decoding
from coopbench.runner.spec import MatrixSpec, fingerprint
from coopbench.runner.store import RunStore

Listener = Callable[[str, dict[str, Any]], None]


@dataclass
class CellStats:
    """Running numbers of one env × planner × llm, for the live display."""

    done: int = 0
    total: int = 0
    successes: int = 0
    queries: int = 0
    errors: int = 0

    def add(self, e: EpisodeResult) -> None:
        self.done += 1
        self.successes += bool(e.success)
        self.queries += e.llm_queries
        self.errors += e.error is not None


@dataclass
class MatrixOutcome:
    status: str  # complete | stopped | interrupted | failed
    detail: str
    total: int
    done_before: int
    ran: int
    plan: Plan
    cells: dict[tuple[str, str, str], CellStats] = field(default_factory=dict)


def group_of(task_or_episode: Any) -> tuple[str, str, str]:
    """(env, planner, llm) of a cell, the llm marked with the decoding and the critic data
    budget the cell asks for."""
    if isinstance(task_or_episode, EpisodeTask):
        t = task_or_episode
        return (t.env_id, t.planner_id, _marked(t.llm_spec, t.decoding, t.critic_data))
    e = task_or_episode
    return (e.env, e.planner, _marked(e.llm, requested_decoding(e.cell),
                                      requested_critic_data(e.cell)))


def _marked(llm: str, decoding: str, critic_data: str) -> str:
    how = llm if decoding == "auto" else f"{llm} [{decoding}]"
    return f"{how} <critic {critic_data}>" if critic_data else how


def prepare(store: RunStore, spec: MatrixSpec, plan: Plan, source: str, resume: bool) -> dict:
    """Check the directory against the spec, write the manifest, return it."""
    manifest = store.read_manifest()
    parts = spec.fingerprint_parts()
    if manifest is None:
        if resume:
            raise CoopbenchError(f"--resume: {store.root} holds no matrix run to resume")
        if store.episodes_path.exists() and store.episodes_path.stat().st_size:
            raise CoopbenchError(f"{store.root} has episodes.jsonl but no manifest.json; "
                                 "use a new --out directory")
        manifest = store.write_manifest(spec.model_dump(mode="json"), extra={"kind": "matrix"})
    elif manifest.get("kind") != "matrix":
        raise CoopbenchError(f"{store.root} is {_made_by(manifest)}, not a matrix run; "
                             "use a new --out directory")
    elif changed := incompatible(manifest, parts):
        raise ConfigError(
            f"{source} changed incompatibly since {store.root} was started ({changed}); "
            "its episodes would not be comparable: restore the spec or use a new --out"
        )
    manifest.update({
        "kind": "matrix",
        "spec": spec.model_dump(mode="json"),
        "spec_path": source,
        "fingerprint": fingerprint(parts),
        "fingerprint_parts": parts,
        "plan": plan.to_json(),
        "simulated_llms": sorted(s for s in spec.llms if s.startswith("sim:")),
    })
    return manifest


def _made_by(manifest: dict[str, Any]) -> str:
    """What wrote a manifest that is not a matrix's, in words."""
    command = manifest["spec"].get("command")
    if command:
        return f"a `coopbench {command}` directory"
    kind = manifest.get("kind")
    return f"a {kind!r} directory" if kind else 'a directory whose manifest has no "kind"'


def incompatible(manifest: dict[str, Any], parts: dict[str, Any]) -> str:
    """What changed the meaning of the directory's finished episodes ("" if nothing).

    Envs and planners added or dropped change no finished episode, so they extend the run;
    the options of one present before and now, the caps and the record format do.
    """
    if manifest.get("fingerprint") in (None, fingerprint(parts)):
        return ""
    old = manifest.get("fingerprint_parts")
    if not isinstance(old, dict):
        return "its spec fingerprint"
    shared = {key: ({k: v for k, v in old.get(key, {}).items() if k in parts.get(key, {})},
                    {k: v for k, v in parts.get(key, {}).items() if k in old.get(key, {})})
              for key in ("envs", "planners")}
    before = {**old, **{key: pair[0] for key, pair in shared.items()}}
    after = {**parts, **{key: pair[1] for key, pair in shared.items()}}
    return _diff(before, after)


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _diff(a, b, f"{prefix}{key}.")
            if inner:
                changes.append(inner)
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return "; ".join(changes)


def dry_run(spec: MatrixSpec, out: Path | str, source: str = "<spec>") -> tuple[Plan, set]:
    """(plan, keys already done in `out`), checking compatibility; writes nothing."""
    plan = expand(spec, source)
    store = RunStore(out)
    manifest = store.read_manifest() if store.root.is_dir() else None
    changed = incompatible(manifest, spec.fingerprint_parts()) if manifest is not None else ""
    if changed:
        raise ConfigError(f"{source} changed incompatibly since {store.root} was started "
                          f"({changed}); restore the spec or use a new --out")
    episodes, _ = store.read_episodes() if manifest is not None else ([], [])
    return plan, {(e.cell, e.episode) for e in episodes if e.error is None}


def compact_transcripts(store: RunStore, done: set[tuple[str, int]]) -> int:
    """Drop transcript lines of episodes that never finished (they will be played again)."""
    path = store.transcripts_path
    records = read_lines(path, readback.transcript).records  # repaired before
    keep = [r for r in records if (r["cell"], r["episode"]) in done]
    if len(keep) == len(records):
        return 0
    replace_lines(path, keep)
    return len(records) - len(keep)


def run_matrix(
    spec: MatrixSpec,
    out: Path | str,
    *,
    source: str = "<spec>",
    executor: str | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    listener: Listener | None = None,
    strict_critic: bool = False,
) -> MatrixOutcome:
    """Play every missing episode of `spec` into `out`; see the module docstring."""
    emit = listener or (lambda kind, data: None)
    plan = expand(spec, source)
    register_keys()  # this process writes what workers saw: it must know keys
    store = RunStore(out).create()
    with run_lock(store.root, f"coopbench matrix {source}"):
        manifest = prepare(store, spec, plan, source, resume)
        for note in store.repair():
            emit("note", {"message": note})
        with store.room_reserved():
            return run_plan(store, manifest, spec, plan, executor, workers, ray_address, emit,
                            strict_critic)


def run_plan(store: RunStore, manifest: dict, spec: MatrixSpec, plan: Plan,
             executor: str | None, workers: int | None, ray_address: str | None,
             emit: Listener, strict_critic: bool = False) -> MatrixOutcome:
    """Play the plan's missing episodes into a locked, prepared directory (`matrix` and
    `run` both come here); the manifest says how it ended."""
    kind = executor or spec.execution.executor
    n_workers = 1 if kind == "serial" else (workers or spec.execution.workers)
    episodes, _ = store.read_episodes()
    done = {(e.cell, e.episode) for e in episodes if e.error is None}
    compact_transcripts(store, done)
    spent = Spend.of(episodes) + Spend(**manifest.get("spend_abandoned", {}))
    todo = deque(t for t in plan.tasks if t.key not in done)
    cells = {group_of(t): CellStats() for t in plan.tasks}
    for t in plan.tasks:
        cells[group_of(t)].total += 1
    for e in episodes:
        if (e.cell, e.episode) in done and group_of(e) in cells:
            cells[group_of(e)].add(e)
    invocation = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": kind,
                  "workers": n_workers, "episodes_run": 0}
    manifest.setdefault("invocations", []).append(invocation)
    _set_status(store, manifest, "running", "")
    outcome = MatrixOutcome("complete", "", len(plan.tasks), len(plan.tasks) - len(todo), 0,
                            plan, cells)
    budget = spec.budget
    stop = spent.exhausted(budget) if budget.is_set() and todo else None
    if stop or not todo:
        return _finish(store, manifest, outcome, "stopped" if stop else "complete", stop or "")
    try:  # before the workers fork: LLM capabilities probed once, critics resolved once
        manifest["llms"] = llm_info.preflight(todo)  # a missing capability: one notice
        manifest["critics"] = prepare_critics(list(todo), in_process=kind == "serial",
                                              strict=strict_critic)
    except KeyboardInterrupt:
        _finish(store, manifest, outcome, "interrupted", "stopped by the user")
        raise
    except CoopbenchError as exc:
        _finish(store, manifest, outcome, "failed", str(exc))
        raise
    except Exception as exc:  # a plug-in's bug: the manifest still says why
        _finish(store, manifest, outcome, "failed", _unexpected(exc))
        raise
    store.save_manifest(manifest)
    ctx = WorkerContext(str(store.root), spec.llm_cache,
                        None if kind == "serial" else spec.execution.llm_concurrency)
    try:
        runner = make_executor(kind, ctx, n_workers, ray_address or spec.execution.ray_address)
    except CoopbenchError as exc:
        _finish(store, manifest, outcome, "failed", str(exc))
        raise
    started(store.root)
    emit("start", {"total": outcome.total, "done": outcome.done_before, "cells": cells,
                   "executor": kind, "workers": n_workers})
    # keep workers busy while this process records results; a budget hands out what is
    # left only to as many episodes as can run at once
    window = n_workers if budget.is_set() else 2 * n_workers
    in_flight = 0
    try:
        while todo or in_flight:
            while todo and in_flight < window and not stop:
                runner.submit(todo.popleft(), spent.remaining(budget) if budget.is_set() else None)
                in_flight += 1
            if not in_flight:
                break
            result = runner.next_done()
            in_flight -= 1
            if result.fatal:
                raise (StorageFull if result.storage_full else CoopbenchError)(result.fatal)
            if result.abandoned:
                spent = spent + result.spent
                manifest["spend_abandoned"] = vars(Spend(**manifest.get("spend_abandoned", {}))
                                                   + result.spent)
                store.save_manifest(manifest)  # spent money survives a kill
                stop = stop or spent.exhausted(budget) or result.abandoned
                continue
            episode = EpisodeResult.from_json(result.result or {})
            store.append_episode(episode)
            spent = spent + result.spent
            outcome.ran += 1
            invocation["episodes_run"] = outcome.ran
            if group_of(episode) in cells:
                cells[group_of(episode)].add(episode)
            emit("episode", {"episode": episode, "cells": cells, "ran": outcome.ran})
            if budget.is_set() and not stop:
                stop = spent.exhausted(budget)
    except KeyboardInterrupt:
        runner.close()
        _finish(store, manifest, outcome, "interrupted", "stopped by the user")
        raise
    except StorageFull as exc:
        runner.close()
        done_now = outcome.done_before + outcome.ran
        message = (f"{exc}; stopped with {done_now} of {outcome.total} episodes done: free "
                   "some space and run the same command again to resume")
        store.free_reserve()  # room for the manifest to say so
        with contextlib.suppress(StorageFull):  # else it stays `running`: resumable too
            _finish(store, manifest, outcome, "interrupted", message)
        raise StorageFull(message) from None
    except CoopbenchError as exc:
        runner.close()
        _finish(store, manifest, outcome, "failed", str(exc))
        raise
    except Exception as exc:
        runner.close()
        _finish(store, manifest, outcome, "failed", _unexpected(exc))
        raise
    runner.close()
    if stop:
        return _finish(store, manifest, outcome, "stopped", stop)
    why = all_failed(store, outcome)
    return _finish(store, manifest, outcome, "failed" if why else "complete", why)


def all_failed(store: RunStore, outcome: MatrixOutcome) -> str:
    """Why the run failed when every episode it played ended in an error ("" otherwise)."""
    if not outcome.ran:
        return ""
    latest = store.read_episodes()[0][-outcome.ran:]
    errors = [e.error for e in latest if e.error is not None]
    if len(errors) < len(latest):
        return ""
    return f"every episode it played failed ({len(errors)}); the first: {errors[0]}"


def _unexpected(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"unexpected {type(exc).__name__}" + (f": {first}" if first else "")


def _set_status(store: RunStore, manifest: dict, status: str, detail: str) -> None:
    manifest["status"] = status
    manifest["status_detail"] = detail
    store.save_manifest(manifest)


def _finish(store: RunStore, manifest: dict, outcome: MatrixOutcome, status: str,
            detail: str) -> MatrixOutcome:
    manifest["invocations"][-1]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["invocations"][-1]["status"] = status
    outcome.status, outcome.detail = status, detail
    _set_status(store, manifest, status, detail)
    return outcome


def budget_message(outcome: MatrixOutcome, source: str) -> str:
    done = outcome.done_before + outcome.ran
    return (f"{outcome.detail}; stopped cleanly with {done} of {outcome.total} episodes done "
            f"(resumable: raise `budget` in {source} and run the same command again)")


__all__ = ["BudgetExceeded", "MatrixOutcome", "budget_message", "run_matrix"]
