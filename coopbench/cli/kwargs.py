"""`--env-kwarg KEY=VALUE` / `--planner-kwarg KEY=VALUE`: typed constructor options.

Values are read as YAML scalars (`14` is an int, `true` a bool, `cramped_room` a string) and
every key is checked against the constructor before anything runs, so a typo is one line
naming the id and the key rather than a traceback mid-run.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
from collections.abc import Sequence
from typing import Any

import typer
import yaml

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError
from coopbench.core.registry import load_entry_point
from coopbench.planners.base import Planner

ENV_KWARG_OPTION = typer.Option(
    None, "--env-kwarg", metavar="KEY=VALUE", help="Env constructor option, value read as "
    "YAML (layout=asymmetric_advantages, max_steps=20); repeatable.")
PLANNER_KWARG_OPTION = typer.Option(
    None, "--planner-kwarg", metavar="KEY=VALUE", help="Planner option, value read as "
    "YAML (history=last, max_replans=3); repeatable.")
STRICT_CRITIC_OPTION = typer.Option(
    False, "--strict-critic", help="Stop, rather than warn, when an advantage critic is below "
    "the quality floors (docs/critics.md).")


def parse_kwargs(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    """`["length=14", "layout=x"]` -> `{"length": 14, "layout": "x"}`; a bad item is one line."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CoopbenchError(f"bad {option} {item!r}: use KEY=VALUE, e.g. max_steps=20")
        if not key.isidentifier():
            raise CoopbenchError(f"bad {option} {item!r}: {key!r} is not an option name")
        if key in out:
            raise CoopbenchError(f"{option} {key} given twice")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CoopbenchError(f"bad {option} {item!r}: the value is not valid YAML") from None
        out[key] = value if _plain(value) else text  # a date or the like stays the text typed
    return out


def _plain(value: Any) -> bool:
    """Whether `value` is made of JSON types only (so the manifest can record it as given)."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _options(factory: Any) -> list[str] | None:
    """The keyword names `factory` accepts, or None when it takes any (`**kwargs`)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let it decide
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _refuse_unknown(id: str, option: str, given: dict[str, Any], known: list[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        shown = f"its options: {', '.join(known)}" if known else "it takes no options"
        raise CoopbenchError(f"{id} has no option {', '.join(unknown)} ({option}); {shown}")


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Refuse keys the env's constructor does not take (checked on its signature)."""
    if not kwargs:
        return
    known = _options(load_entry_point(envs.registry.spec(env_id).entry_point))
    if known is not None:
        _refuse_unknown(env_id, "--env-kwarg", kwargs, known)


def check_planner_kwargs(planner_id: str, kwargs: dict[str, Any]) -> None:
    """Refuse keys the planner does not read: its `Config` fields, its constructor's keyword
    names, or none for a planner that keeps the base constructor (it reads no options)."""
    if not kwargs:
        return
    factory = load_entry_point(planners.registry.spec(planner_id).entry_point)
    config = getattr(factory, "Config", None)
    if dataclasses.is_dataclass(config):
        known: list[str] | None = sorted(f.name for f in dataclasses.fields(config))
    elif isinstance(factory, type) and factory.__init__ is Planner.__init__:
        known = []
    else:
        known = _options(factory)
    if known is not None:
        _refuse_unknown(planner_id, "--planner-kwarg", kwargs, known)


def build(kind: str, id: str, make: Any, kwargs: dict[str, Any], **fixed: Any) -> Any:
    """`make(id, **kwargs, **fixed)`, a value the user gave and the constructor rejects
    turned into one line naming the id (`fixed` are the command's own settings)."""
    try:
        return make(id, **kwargs, **fixed)
    except (CoopbenchError, TypeError, ValueError) as exc:
        if not kwargs:
            raise
        raise CoopbenchError(f"{id} refused --{kind}-kwarg {_shown(kwargs)}: {exc}") from None


def _shown(kwargs: dict[str, Any]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in kwargs.items())
