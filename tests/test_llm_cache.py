"""Cache keys, the SQLite store and the price table (no model, no network)."""

from __future__ import annotations

import multiprocessing

import pytest

from coopbench.core.errors import ConfigError
from coopbench.llm.cache import Entry, ResponseCache, cache_key
from coopbench.llm.pricing import PriceTable
from coopbench.llm.request import Request

BASE = Request(messages=({"role": "user", "content": "hi"},), choices=("a", "b"),
               temperature=0.7, max_tokens=32, seed=1, sample=0)


def _with(**changes) -> Request:
    fields = {k: getattr(BASE, k) for k in BASE.__dataclass_fields__}
    fields.update(changes)
    return Request(**fields)


def test_every_output_changing_parameter_changes_the_key():
    base = cache_key("m", BASE)
    variants = [
        cache_key("m2", BASE),
        cache_key("m", _with(messages=({"role": "user", "content": "hi!"},))),
        cache_key("m", _with(messages=({"role": "system", "content": "hi"},))),
        cache_key("m", _with(choices=("b", "a"))),
        cache_key("m", _with(choices=None)),
        cache_key("m", _with(temperature=0.0)),
        cache_key("m", _with(max_tokens=33)),
        cache_key("m", _with(seed=None)),
        cache_key("m", _with(sample=1)),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert cache_key("m", _with()) == base  # equal requests, equal keys
    reordered = ({"content": "hi", "role": "user"},)  # canonical JSON: key order is irrelevant
    assert cache_key("m", _with(messages=reordered)) == base


def _writer(path: str, start: int) -> None:
    cache = ResponseCache(path)
    for i in range(start, start + 50):
        cache.put(f"k{i}", "m", Entry(f"t{i}", 1, 2, "m", 0.1))


def test_processes_write_one_cache_concurrently(tmp_path):
    path = str(tmp_path / "c.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 50 * i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    cache = ResponseCache(path)
    assert cache.stats() == {"m": 150}
    assert cache.get("k149").text == "t149" and cache.get("nope") is None


def test_price_table_longest_pattern_wins_and_overrides_apply():
    table = PriceTable({"gpt-4o-mini-2024*": {"input": 1.0, "output": 2.0}})
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(1.0)
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("gpt-4o", 0, 1_000_000) == pytest.approx(10.0)
    assert table.cost("local", 10**6, 10**6) == 0.0
    with pytest.raises(ConfigError, match="bad price for 'x'"):
        PriceTable({"x": {"input": "cheap"}})
