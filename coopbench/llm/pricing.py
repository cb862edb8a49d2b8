"""Cost of a call from a price table the user can edit.

Defaults ship in `prices.json` (USD per 1M tokens, fnmatch patterns over the model name);
the config file's `prices:` mapping adds to and overrides them. Local, self-hosted
(`openai-compat`) and simulated models cost nothing unless the config names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from typing import Any

from coopbench.core.errors import ConfigError


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens


def _parse(table: dict[str, Any], where: str) -> dict[str, Price]:
    prices: dict[str, Price] = {}
    for pattern, value in table.items():
        if pattern.startswith("_"):
            continue
        try:
            prices[pattern] = Price(float(value["input"]), float(value["output"]))
        except (TypeError, KeyError, ValueError):
            raise ConfigError(
                f"bad price for {pattern!r} in {where}: use {{input: <usd/1M>, output: <usd/1M>}}"
            ) from None
    return prices


def default_prices() -> dict[str, Price]:
    text = resources.files("coopbench.llm").joinpath("prices.json").read_text("utf-8")
    return _parse(json.loads(text), "prices.json")


class PriceTable:
    def __init__(self, overrides: dict[str, Any] | None = None, where: str = "config") -> None:
        self.prices = default_prices()
        self.prices.update(_parse(overrides or {}, where))

    def lookup(self, model: str) -> Price | None:
        matches = [p for p in self.prices if fnmatchcase(model, p)]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        price = self.lookup(model)
        if price is None:
            return 0.0
        return (tokens_in * price.input + tokens_out * price.output) / 1e6
