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


# Plug-in specs (id, source, entry point) whose first env passed `check_contract`.
_checked: set[tuple[str, str, str]] = set()


def make(id: str, **kwargs: Any) -> Any:
    """Build the env registered as `id` (unversioned ids resolve to the newest version).

    The first env made for each plug-in id is checked against the contract, so a broken
    plug-in fails here with one line rather than mid-episode with a traceback. Built-ins are
    checked by the test suite instead.
    """
    env = registry.make(id, **kwargs)
    spec = getattr(env, "spec", None) or registry.spec(id)
    key = (spec.id, spec.source, str(spec.entry_point))
    if spec.source != "builtin" and key not in _checked:
        from coopbench.envs.validate import check_contract

        check_contract(env, spec.id)
        _checked.add(key)
    return env


def register(id: str, entry_point: Any, **kwargs: Any) -> Spec:
    """Register an env id; see `coopbench.core.registry.Registry.register`."""
    return registry.register(id, entry_point, **kwargs)


__all__ = ["LanguageEnv", "VocabularyEnv", "make", "register", "registry"]
