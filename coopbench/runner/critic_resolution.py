"""Critics for a run, resolved by the runner before any episode, never by the planners.

Each distinct (env, env kwargs, critic request) among the tasks still to run is resolved once:
loaded, or trained on demand and checked against the quality floors (critics/resolve.py).
Every task of it is then handed that checkpoint, so parallel workers load one file instead of
each training their own, and the run manifest records under `critics` what was used, where it
came from and its quality figures. Resolution that may train runs in a spawned process when
the episodes run in forked workers: the matrix process itself stays free of torch threads and
simulators (runner/executors.py explains why that matters).
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import CriticRequest
from coopbench.runner.single import EpisodeTask

GroupKey = tuple[str, str, CriticRequest]


def request_of(task: EpisodeTask, strict: bool = False) -> CriticRequest | None:
    """The critic the task's planner asks for (`strict` forces the quality floors). A planner
    registered without `needs_critic` asks for none (check_planner holds it to that), so it is
    not built here: only the episode builds it."""
    if not planners.registry.spec(task.planner_id).caps.needs_critic:
        return None
    request = planners.make(task.planner_id, **(task.planner_kwargs or {})).critic_request()
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


def resolve_for(task: EpisodeTask, request: CriticRequest) -> dict[str, Any]:
    """Resolve the critic of one task run on its own (a script, `play`)."""
    kwargs = json.dumps(task.env_kwargs or {}, sort_keys=True, default=str)
    return resolve_one(task.env_id, kwargs, request)


def prepare_critics(
    tasks: list[EpisodeTask], *, in_process: bool, strict: bool = False
) -> list[dict[str, Any]]:
    """Resolve the tasks' critics, point each task at its checkpoint, return the records."""
    groups: dict[GroupKey, list[EpisodeTask]] = {}
    requests: dict[tuple[str, str], CriticRequest | None] = {}  # one planner built per cell
    for task in tasks:
        cell = (task.planner_id, json.dumps(task.planner_kwargs or {}, sort_keys=True,
                                            default=str))
        if cell not in requests:
            requests[cell] = request_of(task, strict)
        if requests[cell] is not None:
            kwargs = json.dumps(task.env_kwargs or {}, sort_keys=True, default=str)
            groups.setdefault((task.env_id, kwargs, requests[cell]), []).append(task)
    if not groups:
        return []
    if in_process:
        found = [resolve_one(*key) for key in groups]
    else:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            found = list(pool.map(resolve_one, *zip(*groups, strict=True)))
    records = []
    for ((env_id, kwargs, request), group), described in zip(groups.items(), found,
                                                              strict=True):
        for task in group:
            task.critic_checkpoint = described["checkpoint"]
        records.append({"env": env_id, "env_kwargs": json.loads(kwargs),
                        "planners": sorted({t.planner_id for t in group}),
                        "request": request.to_json(), **described})
    return records
