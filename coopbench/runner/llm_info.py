"""Before a run's first episode: what each LLM can do, and how each cell will decode.

Each model spec of the run is built once in the runner's process and asked for its
capabilities: an HTTP endpoint is probed here unless the answer is remembered (24 h, beside
the response cache; `coopbench llm check --refresh` probes again), and the workers read that
answer. So a re-run answered wholly from the response cache reaches no endpoint at all.
Each cell's decoding is resolved from them, so a cell asking for constrained decoding from an
endpoint that cannot do it stops the run before anything is spent, with the reason in the
manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coopbench import planners
from coopbench.llm.capabilities import Capabilities, resolve_decoding
from coopbench.runner.single import EpisodeTask


def preflight(tasks: Iterable[EpisodeTask]) -> dict[str, Any]:
    """{"models": {spec: model id and capabilities}, "decoding": {cell: resolved}}."""
    from coopbench import llm as llm_layer

    tasks = [t for t in tasks if planners.registry.spec(t.planner_id).caps.needs_llm]
    models: dict[str, dict[str, Any]] = {}
    caps: dict[str, Capabilities] = {}
    for spec in dict.fromkeys(t.llm_spec for t in tasks):
        model = llm_layer.make(spec, cache=False)
        caps[spec] = model.capabilities()
        models[spec] = {"model_id": model.model_id, "simulated": model.simulated,
                        "capabilities": caps[spec].to_json()}
    decoding: dict[str, str] = {}
    for t in tasks:
        cell = t.cell.rpartition("|seed=")[0]
        if cell not in decoding:
            requested = str((t.planner_kwargs or {}).get("decoding", t.decoding))
            decoding[cell] = resolve_decoding(requested, caps[t.llm_spec], t.llm_spec)
    return {"models": models, "decoding": decoding}

