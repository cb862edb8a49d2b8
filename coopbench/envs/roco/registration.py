"""Registers the built-in `roco/...` env ids (strings only: importing this is cheap)."""

from __future__ import annotations

from coopbench.registry import Registry


def register(registry: Registry) -> None:
    """Called once by `coopbench.envs.registry` the first time it is read."""
