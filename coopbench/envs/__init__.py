"""Environments: the registry and the `LanguageEnv` contract.

    >>> import coopbench.envs as envs
    >>> env = envs.make("overcooked/cramped_room-v0")        # doctest: +SKIP

Built-in families register themselves from light modules (`<family>/registration.py`) that
name their entry points as strings, so listing ids imports no simulator.
"""

from __future__ import annotations

from typing import Any

from coopbench.core.registry import Registry, Spec
from coopbench.envs.base import LanguageEnv, VocabularyEnv

registry = Registry(
    "env",
    "coopbench.envs",
    builtins=("coopbench.envs.overcooked.registration", "coopbench.envs.roco.registration"),
)


def make(id: str, **kwargs: Any) -> Any:
    """Build the env registered as `id` (unversioned ids resolve to the newest version)."""
    return registry.make(id, **kwargs)


def register(id: str, entry_point: Any, **kwargs: Any) -> Spec:
    """Register an env id; see `coopbench.core.registry.Registry.register`."""
    return registry.register(id, entry_point, **kwargs)


__all__ = ["LanguageEnv", "VocabularyEnv", "make", "register", "registry"]
