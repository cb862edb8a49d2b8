"""Typed capabilities of registered ids: what an env offers and what a planner needs.

Each registration carries one frozen model: `EnvCaps` for an env id, `PlannerCaps` for a
planner id. The runner decides which env × planner cells can run from these alone (the rules
are in `coopbench.runner.cells`), so a plug-in takes part by declaring them, as a model or a
plain dict:

    registry.register("meetgrid/meet-v0", "coopbench_meetgrid.env:MeetGridEnv",
                      caps={"agents": 2, "partial_obs": False})

An unknown key or a value of the wrong type stops the registration with one line that names
the id, the key and the known keys (`CapsError`).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from coopbench.core.errors import CapsError

Mode = Literal["joint", "sequential"]
Count = Annotated[StrictInt, Field(ge=1)]


class Capabilities(BaseModel):
    """Capabilities of a registered id; subclasses list the fields. Frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # keys an older registration (the `flags=` dict) wrote: renamed ones map to their field,
    # unread ones (None) are dropped
    LEGACY_KEYS: ClassVar[dict[str, str | None]] = {}

    @classmethod
    def known_keys(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def parse(cls, value: Capabilities | Mapping[str, Any] | None, where: str) -> Capabilities:
        """`value` as a `cls`; a dict is checked key by key. `where` names the id in errors."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Capabilities):
            raise CapsError(f"{where}: caps are {type(value).__name__}, expected {cls.__name__}")
        if not isinstance(value, Mapping):
            raise CapsError(f"{where}: caps must be a {cls.__name__} or a dict, "
                            f"not {type(value).__name__}")
        known = cls.known_keys()
        unknown = [str(k) for k in value if k not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            what = "key" if len(unknown) == 1 else "keys"
            raise CapsError(f"{where}: unknown caps {what} {', '.join(map(repr, unknown))}{hint}; "
                            f"known keys: {', '.join(known)}")
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            raise CapsError(f"{where}: {_problems(exc)}; known keys: {', '.join(known)}") from None

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], where: str) -> Capabilities:
        """The old `flags=` dict, with renamed keys mapped and unread ones dropped."""
        warnings.warn(f"{where}: `flags=` is deprecated; register with `caps=` "
                      f"({', '.join(cls.known_keys())})", DeprecationWarning, stacklevel=4)
        caps: dict[str, Any] = {}
        for key, value in flags.items():
            if key in cls.LEGACY_KEYS and key not in cls.model_fields:
                if cls.LEGACY_KEYS[key] is not None:
                    caps[cls.LEGACY_KEYS[key]] = value
                continue
            caps[key] = value
        return cls.parse(caps, where)

    def summary(self) -> str:
        """A few words for `coopbench envs` / `coopbench planners` tables."""
        return ""


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: `bad caps value for 'agents': ... (got '2')`."""
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if key:
            parts.append(f"bad caps value for {key!r}: {message} (got {error['input']!r})")
        else:
            parts.append(f"bad caps: {message}")
    return "; ".join(parts)


class EnvCaps(Capabilities):
    """What an env offers. `None` means "not declared": no rule skips on it."""

    agents: Count | None = Field(
        None, description="number of agents; a planner's `max_agents` below it skips the cell")
    partial_obs: StrictBool | None = Field(
        None, description="each agent sees only part of the state (`False`: every agent sees "
                          "the global state); read by `requires_partial_obs` / `requires_full_obs`")
    critic: StrictBool = Field(
        True, description="an advantage critic can be trained for it; `False` skips planners "
                          "that `needs_critic`")
    modes: tuple[Mode, ...] | None = Field(
        None, description="planning modes it supports (`joint`, `sequential`); a planner whose "
                          "`mode` is not listed is skipped; `None`: any")
    task: StrictStr | None = Field(
        None, description="a free label for the task (RoCo: `sweep`, `sandwich`, `sort`); "
                          "read by no rule")

    LEGACY_KEYS: ClassVar[dict[str, str | None]] = {"text_obs": None, "family": None}

    def summary(self) -> str:
        words = []
        if self.agents is not None:
            words.append(f"{self.agents} agents")
        if self.partial_obs is not None:
            words.append("partial obs" if self.partial_obs else "full obs")
        if not self.critic:
            words.append("no critic")
        if self.modes:
            words.append("/".join(self.modes))
        return ", ".join(words)


class PlannerCaps(Capabilities):
    """What a planner needs from a cell (its LLM, critic, views, env)."""

    needs_llm: StrictBool = Field(
        True, description="it queries an LLM: one cell per listed LLM, skipped when the spec "
                          "lists none; `False`: one cell with llm `none`")
    needs_critic: StrictBool = Field(
        False, description="it uses an advantage critic; skipped on an env with `critic=False`")
    mode: Mode = Field(
        "joint", description="`joint` (one plan for all agents) or `sequential` (agent by "
                             "agent); skipped when the env lists `modes` without it")
    uses_partial_obs: StrictBool = Field(
        False, description="it plans from per-agent views; on a fully observed env each view "
                           "is the global one, so it is not skipped")
    requires_partial_obs: StrictBool = Field(
        False, description="it only works with partial views; skipped on an env with "
                           "`partial_obs=False`")
    requires_full_obs: StrictBool = Field(
        False, description="it needs the full state; skipped on an env with `partial_obs=True`")
    env_families: tuple[StrictStr, ...] | None = Field(
        None, description="env families (the id's `family/`) it supports; others are skipped; "
                          "`None`: any")
    max_agents: Count | None = Field(
        None, description="the most agents it handles; an env with more is skipped")

    LEGACY_KEYS: ClassVar[dict[str, str | None]] = {"partial_obs": "uses_partial_obs"}

    @model_validator(mode="after")
    def _one_observation_requirement(self) -> PlannerCaps:
        if self.requires_partial_obs and self.requires_full_obs:
            raise ValueError("requires_partial_obs and requires_full_obs cannot both be true")
        return self

    def summary(self) -> str:
        words = ([] if self.needs_llm else ["no LLM"]) + [self.mode]
        if self.uses_partial_obs:
            words.append("uses_partial_obs")
        words += [name for name in ("needs_critic", "requires_partial_obs", "requires_full_obs")
                  if getattr(self, name)]
        if self.env_families:
            words.append("/".join(self.env_families) + " only")
        if self.max_agents is not None:
            words.append(f"max {self.max_agents} agents")
        return ", ".join(words)


def _type_words(schema: dict[str, Any]) -> str:
    """A JSON-schema fragment as the few words the docs use: `int ≥ 1 or None`."""
    if "anyOf" in schema:
        return " or ".join(_type_words(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type_words(schema.get('items', {}))}"
    words = {"integer": "int", "boolean": "bool", "string": "str", "null": "None"}.get(kind, "any")
    if "minimum" in schema:
        words += f" ≥ {schema['minimum']}"
    return words


def markdown_table(model: type[Capabilities]) -> str:
    """The docs' table of `model`'s fields (the docs embed it; a test keeps them equal)."""
    properties = model.model_json_schema()["properties"]
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        rows.append(f"| `{name}` | {_type_words(properties[name])} | `{info.default!r}` | "
                    f"{info.description} |")
    return "\n".join(rows)
