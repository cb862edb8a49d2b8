"""How each model of a run answered, from `llm_calls.jsonl`: ids, decoding, cache, latency.

The call log is the one record of the model id a spec resolved to and of the decoding
parameters of every request (temperature, constrained choices, scoring), so the overview
reads it whole, one line at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from coopbench.core.manifest import LLM_CALLS
from coopbench.reporting.labels import is_simulated


def _new(spec: str) -> dict[str, Any]:
    return {"spec": spec, "simulated": is_simulated(spec), "model_ids": set(), "models": set(),
            "calls": 0, "cache_hits": 0, "errors": 0, "constrained": 0, "scored": 0,
            "methods": set(), "temperatures": set(), "max_tokens": set(), "latency": 0.0,
            "tokens_in": 0, "tokens_out": 0}


def _same(a: str, b: str) -> bool:
    try:
        return a == b or float(a) == float(b)
    except ValueError:
        return False


def alias_of(call_spec: str, run_specs: list[str]) -> str:
    """The run's spelling of a spec the call log records in full: the log writes every
    default out (`sim:expert?noise=0.3` is logged as `sim:expert?garble=0.0&noise=0.3&seed=0`),
    so a run spec matches when its base is the same and each parameter it sets agrees."""
    base, _, query = call_spec.partition("?")
    logged = dict(parse_qsl(query))
    for spec in run_specs:
        mine, _, my_query = spec.partition("?")
        if mine == base and all(k in logged and _same(v, logged[k])
                                for k, v in parse_qsl(my_query)):
            return spec
    return call_spec


def model_table(run_dir: Path, specs: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """One row per LLM spec (those of the run first) and whether a call log was found."""
    rows = {s: _new(s) for s in specs if s not in ("", "none")}
    alias: dict[str, str] = {}
    path = Path(run_dir) / LLM_CALLS
    found = path.exists()
    if found:
        with open(path, "rb") as f:
            for raw in f:
                try:
                    call = json.loads(raw)
                except ValueError:  # a torn last line: the overview skips it
                    continue
                if isinstance(call, dict):
                    _add(rows, alias, call)
    out = []
    for row in rows.values():
        n = row["calls"]
        out.append({**row, "model_ids": sorted(row["model_ids"]),
                    "models": sorted(m for m in row["models"] if m),
                    "methods": sorted(m for m in row["methods"] if m),
                    "temperatures": sorted(row["temperatures"]),
                    "max_tokens": sorted(row["max_tokens"]),
                    "mean_latency_s": row["latency"] / n if n else None})
    return out, found


def _add(rows: dict[str, dict[str, Any]], alias: dict[str, str], call: dict[str, Any]) -> None:
    spec = str(call.get("spec", ""))
    if spec not in alias:
        alias[spec] = alias_of(spec, list(rows))
    spec = alias[spec]
    row = rows.setdefault(spec, _new(spec))
    row["calls"] += 1
    row["cache_hits"] += bool(call.get("cache_hit"))
    row["errors"] += call.get("error") is not None
    row["latency"] += float(call.get("latency_s") or 0.0)
    row["model_ids"].add(str(call.get("model_id", "")))
    row["models"].add(str(call.get("model") or ""))
    usage = call.get("usage") or {}
    row["tokens_in"] += int(usage.get("tokens_in", 0) or 0)
    row["tokens_out"] += int(usage.get("tokens_out", 0) or 0)
    request = call.get("request") or {}
    if request.get("kind") == "score":
        row["scored"] += 1
        response = call.get("response") or {}
        if isinstance(response, dict):
            row["methods"].add(str(response.get("method", "")))
        return
    if request.get("choices") is not None:
        row["constrained"] += 1
    if request.get("temperature") is not None:
        row["temperatures"].add(float(request["temperature"]))
    if request.get("max_tokens") is not None:
        row["max_tokens"].add(int(request["max_tokens"]))
