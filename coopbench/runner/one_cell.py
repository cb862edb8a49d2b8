"""`coopbench run` as a one-cell matrix: one env × planner × LLM over seeds.

The request becomes a `MatrixSpec` with one env and one planner, expanded by the same rules
(a planner that cannot run on the env is refused with the rule's reason) and played by the
matrix's own loop (`matrix.run_plan`): the same lock, repair, critic resolution, executor,
status and full-disk handling. Only the manifest keeps the `run` form (`spec.command: run`), so
directories written by earlier versions resume, and a resume with other options is refused
because episode keys do not name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError
from coopbench.llm.config import register_keys
from coopbench.runner.cells import expand
from coopbench.runner.lock import run_lock
from coopbench.runner.matrix import Listener, MatrixOutcome, run_plan
from coopbench.runner.single import llm_for
from coopbench.runner.spec import Entry, MatrixSpec
from coopbench.runner.store import RunStore


@dataclass(frozen=True)
class CellRequest:
    """What `coopbench run` was asked for (ids and the LLM spec already checked)."""

    env: str
    planner: str
    llm: str  # canonical spec, or "none" for a planner that needs no LLM
    seeds: list[int]
    episodes: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    planner_kwargs: dict[str, Any] = field(default_factory=dict)

    def matrix(self) -> MatrixSpec:
        """The one-cell matrix this request is."""
        return MatrixSpec(
            name=envs.registry.spec(self.env).name,
            envs=[Entry(id=self.env, kwargs=self.env_kwargs)],
            planners=[Entry(id=self.planner, kwargs=self.planner_kwargs)],
            llms=[] if self.llm == "none" else [self.llm],
            seeds=self.seeds,
            episodes_per_seed=self.episodes,
        )

    def manifest_spec(self) -> dict[str, Any]:
        return {
            "command": "run",
            "env": envs.registry.spec(self.env).to_json(),
            "planner": planners.registry.spec(self.planner).to_json(),
            "llm": self.llm,
            "seeds": self.seeds,
            "episodes_per_seed": self.episodes,
            "env_kwargs": self.env_kwargs,
            "planner_kwargs": self.planner_kwargs,
        }


def run_cell(request: CellRequest, out: Path | str, *, listener: Listener | None = None,
             strict_critic: bool = False) -> MatrixOutcome:
    """Play every missing episode of `request` into `out` (serially, in this process)."""
    emit = listener or (lambda kind, data: None)
    spec = request.matrix()
    plan = expand(spec, "coopbench run")
    if plan.skipped:
        raise CoopbenchError(f"cannot run {request.planner} on {request.env}: "
                             f"{plan.skipped[0]['reason']}")
    register_keys()
    store = RunStore(out).create()
    with run_lock(store.root, "coopbench run"):
        earlier = _check(store, request)
        if plan.tasks:  # a model that cannot load is one line before the manifest is written;
            llm_for(plan.tasks[0], store.llm_calls_path)  # it stays loaded for the episodes
        kept = {key: earlier[key] for key in ("critics", "invocations", "spend_abandoned")
                if earlier is not None and key in earlier}
        manifest = store.write_manifest(request.manifest_spec(),
                                        extra={"status": "running", **kept})
        for note in store.repair():
            emit("note", {"message": note})
        with store.room_reserved():
            return run_plan(store, manifest, spec, plan, "serial", 1, None, emit, strict_critic)


def _check(store: RunStore, request: CellRequest) -> dict[str, Any] | None:
    """The directory's earlier manifest, if the request may resume it."""
    earlier = store.read_manifest()  # a damaged one is one line, before any repair
    if earlier is not None and earlier.get("kind") == "matrix":
        raise CoopbenchError(f"{store.root} is a `coopbench matrix` directory; run the "
                             "matrix again to resume it, or use a new --out")
    if earlier is not None and earlier["spec"].get("command") == "run":
        _check_same_kwargs(store.root, earlier["spec"], request)
    return earlier


def _check_same_kwargs(root: Path, spec: dict, request: CellRequest) -> None:
    """Refuse a resume with other kwargs: episode keys do not name them, so finished episodes
    of the old options would be skipped as if done with the new ones."""
    changes = [
        f"{option} {diff}"
        for option, old, new in (
            ("--env-kwarg", spec.get("env_kwargs"), request.env_kwargs),
            ("--planner-kwarg", spec.get("planner_kwargs"), request.planner_kwargs))
        if (diff := kwargs_changed(old if isinstance(old, dict) else {}, new))
    ]
    if changes:
        raise CoopbenchError(f"{root} was run with other options ({'; '.join(changes)}); its "
                             "episodes would not be comparable: give the same options or a new "
                             "--out")


def kwargs_changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """`"layout: 'a' -> 'b'; max_steps: None -> 3"`, or "" when equal."""
    return "; ".join(
        f"{key}: {_value(old, key)} -> {_value(new, key)}"
        for key in sorted(set(old) | set(new))
        if old.get(key, _MISSING) != new.get(key, _MISSING)
    )


_MISSING = object()


def _value(kwargs: dict[str, Any], key: str) -> str:
    return repr(kwargs[key]) if key in kwargs else "(unset)"
