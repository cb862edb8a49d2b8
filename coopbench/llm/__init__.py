"""The LLM layer: `make(spec, call_log=...)` builds a model from a spec string.

See `coopbench.llm.base` for the contract and docs/llm.md for the backends, the cache,
retries, accounting and the call log.
"""

from __future__ import annotations

import os
from pathlib import Path

from coopbench.llm.base import LLM, Completion, Message, Oracle, Scores
from coopbench.llm.cache import ResponseCache
from coopbench.llm.calllog import CallLog
from coopbench.llm.client import Model, call_context
from coopbench.llm.config import LLMConfig, load
from coopbench.llm.pricing import PriceTable
from coopbench.llm.spec import ModelSpec, parse

__all__ = ["LLM", "Completion", "Message", "Model", "ModelSpec", "Oracle", "Scores", "call_context",
           "make", "parse"]

CACHE_OFF_ENV = "COOPBENCH_LLM_CACHE"  # set to "off" to disable the response cache


def make(
    spec: str,
    call_log: Path | str | None = None,
    *,
    cache: bool | Path | str | None = None,
    config: LLMConfig | None = None,
) -> Model:
    """A model for `spec`; every call is appended to `call_log` (a run's llm_calls.jsonl).

    `cache`: None = on unless `COOPBENCH_LLM_CACHE=off`; False = off; a path = that SQLite
    file. Malformed or unknown specs raise `CoopbenchError`.
    """
    parsed = parse(spec)
    config = config or load()
    backend, price_name = _backend(parsed, config)
    return Model(
        backend,
        spec=parsed.canonical(),
        price_name=price_name,
        prices=PriceTable(config.prices, config.source),
        cache=_cache(cache) if getattr(backend, "cacheable", True) else None,
        call_log=CallLog(call_log) if call_log is not None else None,
    )


def _cache(cache: bool | Path | str | None) -> ResponseCache | None:
    from coopbench.llm import paths

    if cache is False or (cache is None and os.environ.get(CACHE_OFF_ENV, "").lower() == "off"):
        return None
    if cache is None or cache is True:
        return ResponseCache(paths.cache_db())
    return ResponseCache(Path(cache))


def _backend(parsed: ModelSpec, config: LLMConfig):  # -> (Backend, price name)
    """Built by the scheme's entry in the backend registry (`coopbench.llm.backends`)."""
    from coopbench.llm import backends

    return backends.entry_for(parsed.scheme, parsed.canonical()).build(parsed, config)
