"""Planners: the registry and the `Planner` contract.

Ids are `family/name-vN`; the short forms the issues use (`random-v0`, `read-j-v0`) are
accepted too and resolve to the single registered id with that name.
"""

from __future__ import annotations

from typing import Any

from coopbench.core.registry import Registry, Spec
from coopbench.planners.base import Planner

registry = Registry("planner", "coopbench.planners", builtins=("coopbench.planners.registration",))


def make(id: str, **kwargs: Any) -> Planner:
    return registry.make(id, **kwargs)


def register(id: str, entry_point: Any, **kwargs: Any) -> Spec:
    return registry.register(id, entry_point, **kwargs)


__all__ = ["Planner", "make", "register", "registry"]
