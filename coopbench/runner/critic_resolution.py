"""Critics for a run, resolved by the runner before any episode, never by the planners.

Each distinct (env, env kwargs, critic request) among the tasks still to run is resolved once:
loaded, or trained on demand and checked against the quality floors (critics/resolve.py).
Every task of it is then handed that checkpoint, so parallel workers load one file instead of
each training their own, and the run manifest records under `critics` what was used, where it
came from, what data it was trained on (sources and transitions) and its quality figures.
A task of a critic data budget (the spec's `critic_data` axis) gets the critic of its (env,
source, budget) instead (critics/budget.py): cached, or collected and trained, once per
budget, each source's data once for all its budgets. Resolution that may train runs in a
spawned process when
the episodes run in forked workers: the matrix process itself stays free of torch threads and
simulators (runner/executors.py explains why that matters).
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import CriticRequest
from coopbench.runner.single import EpisodeTask, planner_for

if TYPE_CHECKING:
    from coopbench.critics.budget import DataSource

GroupKey = tuple[str, str, CriticRequest, str]  # env, kwargs JSON, request, budget label


def request_of(task: EpisodeTask, strict: bool = False) -> CriticRequest | None:
    """The critic the task's planner asks for (`strict` forces the quality floors). The
    planner asked is the task's own (`planner_for`): it stays on the task, and its episode
    plays with it when it runs in this process. A planner registered without `needs_critic`
    asks for none (check_planner holds it to that), so it is not built here."""
    if not planners.registry.spec(task.planner_id).caps.needs_critic:
        return None
    request = planner_for(task).critic_request()
    if request is not None and strict:
        request = dataclasses.replace(request, strict=True)
    return request


def resolve_one(env_id: str, env_kwargs_json: str, request: CriticRequest) -> dict[str, Any]:
    """Resolve one critic; returns what the manifest records (picklable, for a subprocess)."""
    from coopbench.critics.resolve import locate

    env = envs.make(env_id, **json.loads(env_kwargs_json))
    try:
        env.reset(seed=0)  # loading checks the checkpoint against a live state
        return locate(env, request).describe()
    except CoopbenchError:
        raise
    except Exception as exc:  # an env that breaks its contract: one line, the run marked failed
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise CoopbenchError(f"env {env_id}: resolving its critic failed ({detail}); "
                             "coopbench.testing.check_env names the broken rule") from None
    finally:
        env.close()


def resolve_budgets(env_id: str, env_kwargs_json: str, source: DataSource,
                    budgets: list[int], train_seconds: float) -> list[dict[str, Any]]:
    """The critics of one (env, source)'s budgets, for the manifest (picklable)."""
    from coopbench.critics.budget import locate_budgets

    env = envs.make(env_id, **json.loads(env_kwargs_json))
    try:
        env.reset(seed=0)
        found = locate_budgets(env, source, budgets, train_seconds)
        return [f.describe() for f in found]
    finally:
        env.close()


def resolve_for(task: EpisodeTask, request: CriticRequest) -> dict[str, Any]:
    """Resolve the critic of one task run on its own (a script, `play`)."""
    kwargs = json.dumps(task.env_kwargs or {}, sort_keys=True, default=str)
    if task.critic_data:
        from coopbench.critics.budget import DataBudget

        budget = DataBudget.from_label(task.critic_data)
        return resolve_budgets(task.env_id, kwargs, budget.source, [budget.transitions],
                               request.train_seconds)[0]
    return resolve_one(task.env_id, kwargs, request)


def _resolve_all(groups: list[GroupKey], in_process: bool) -> list[dict[str, Any]]:
    """One description per group: plain groups one by one, budget groups bundled per (env,
    source) so that each source's data is collected once for all its budgets."""
    from coopbench.critics.budget import DataBudget

    jobs: dict[tuple, list[int]] = {}  # job -> positions of its groups
    calls: dict[tuple, partial] = {}  # job -> its picklable call
    bundles: dict[tuple, tuple[list[int], float]] = {}  # budget job -> (budgets, seconds)
    for i, (env_id, kwargs, request, label) in enumerate(groups):
        if not label:
            job: tuple = ("one", i)
            calls[job] = partial(resolve_one, env_id, kwargs, request)
        else:
            budget = DataBudget.from_label(label)
            job = ("budget", env_id, kwargs, budget.source)
            sizes, seconds = bundles.get(job, ([], 0.0))
            bundles[job] = ([*sizes, budget.transitions], max(seconds, request.train_seconds))
            calls[job] = partial(resolve_budgets, env_id, kwargs, budget.source, *bundles[job])
        jobs.setdefault(job, []).append(i)
    if in_process:
        results = [call() for call in calls.values()]
    else:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(call) for call in calls.values()]
            results = [f.result() for f in futures]
    found: list[dict[str, Any]] = [{} for _ in groups]
    for job, result in zip(calls, results, strict=True):
        if job[0] == "one":
            found[jobs[job][0]] = result
            continue
        for position, described in zip(jobs[job], result, strict=True):
            found[position] = described
    return found


def prepare_critics(
    tasks: list[EpisodeTask], *, in_process: bool, strict: bool = False
) -> list[dict[str, Any]]:
    """Resolve the tasks' critics, point each task at its checkpoint, return the records."""
    groups: dict[GroupKey, list[EpisodeTask]] = {}
    requests: dict[tuple[str, str], CriticRequest | None] = {}  # asked of its first task
    for task in tasks:
        cell = (task.planner_id, json.dumps(task.planner_kwargs or {}, sort_keys=True,
                                            default=str))
        if cell not in requests:
            requests[cell] = request_of(task, strict)
        if requests[cell] is not None:
            kwargs = json.dumps(task.env_kwargs or {}, sort_keys=True, default=str)
            groups.setdefault((task.env_id, kwargs, requests[cell], task.critic_data),
                              []).append(task)
    if not groups:
        return []
    found = _resolve_all(list(groups), in_process)
    records = []
    for ((env_id, kwargs, request, label), group), described in zip(groups.items(), found,
                                                                     strict=True):
        for task in group:
            task.critic_checkpoint = described["checkpoint"]
        budget = {"critic_data": _budget_json(label)} if label else {}
        records.append({"env": env_id, "env_kwargs": json.loads(kwargs),
                        "planners": sorted({t.planner_id for t in group}),
                        "request": request.to_json(), **budget, **described})
    return records


def _budget_json(label: str) -> dict[str, Any]:
    from coopbench.critics.budget import DataBudget

    return DataBudget.from_label(label).to_json()
