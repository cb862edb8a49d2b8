"""Matrix specs: the YAML files under `benchmarks/`, validated with pydantic.

A spec names envs, planners, LLM specs, seeds and episodes per seed; cells are
env × planner × llm × seed. Every key is documented in docs/runner.md. A bad key or value is
reported as one line naming the file, the key and what is allowed; malformed YAML as one
line with `file:line:column`.

`fingerprint()` hashes only what changes the result of an episode that already ran (env and
planner options, caps, LLM cache setting, record format), so adding seeds, envs or planners to
a spec and re-running the same output directory extends the run, while changing a cap is
refused (the old episodes would no longer be comparable).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from coopbench.core.configfile import load_yaml
from coopbench.core.errors import ConfigError, CoopbenchError
from coopbench.runner.seeds import (
    MAX_EPISODES,
    SEED_LIMIT,
    SeedsError,
    check_seed_count,
    parse_seeds,
)

FORMAT_VERSION = 1  # bump when the meaning of an episodes.jsonl line changes


Decoding = Literal["auto", "constrained", "free"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(_Strict):
    """An env or planner: a registered id plus keyword arguments for its constructor."""

    id: str = Field(description="Registered id, e.g. roco/sweep-y1g1-v0 or read-j-v0.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")


class Caps(_Strict):
    max_steps: int | None = Field(
        None, ge=1, description="Override every env's interaction-step cap (ES of a failure)."
    )


class Budget(_Strict):
    """Stop the matrix cleanly once the run directory has spent this much (cache hits free)."""

    max_llm_calls: int | None = Field(None, ge=0, description="LLM calls that reached a model.")
    max_tokens: int | None = Field(None, ge=0, description="Prompt + completion tokens.")
    max_cost_usd: float | None = Field(None, ge=0, description="Dollars, from the price table.")

    def is_set(self) -> bool:
        return any(v is not None for v in self.model_dump().values())


class Execution(_Strict):
    executor: Literal["serial", "process", "ray"] = Field(
        "serial", description="serial (in this process), process (a pool), ray (Ray tasks)."
    )
    workers: int = Field(1, ge=1, le=512, description="Episodes run at the same time.")
    ray_address: str | None = Field(None, description="Existing Ray cluster; None = local.")
    llm_concurrency: int = Field(
        8, ge=1, description="Concurrent calls per LLM endpoint across all workers."
    )


class CriticData(_Strict):
    """One data source of the `critic_data` axis and its budgets (critics/budget.py)."""

    source: str = Field(description="expert+reset (the on-demand data), expert, reset, "
                                    "planner:<planner id>@<llm spec> (ReAd's LLM-planned data), "
                                    "or several joined with +.")
    epsilon: float = Field(0.0, description="planner source: per step, chance of a random legal "
                                            "joint action instead of the planner's, in [0, 1].")
    gamma: float = Field(0.95, description="discount of the critic's Monte-Carlo targets, in "
                                           "(0, 1]; 0.95 as on-demand critics.")
    transitions: list[int] = Field(min_length=1, description="Budgets: rows of critic data; "
                                   "one critic and one set of cells per budget.")

    @field_validator("transitions", mode="before")
    @classmethod
    def _transitions(cls, value: Any) -> Any:
        from coopbench.critics.budget import check_transitions

        values = value if isinstance(value, list) else [value]
        try:
            checked = [check_transitions(v) for v in values]
        except CoopbenchError as exc:
            raise ValueError(str(exc)) from None
        if len(set(checked)) != len(checked):
            raise ValueError("budgets are listed once each")
        return checked

    def budgets(self) -> list[str]:
        """The cell labels of this source's budgets (checked: bad sources are one line)."""
        from coopbench.critics.budget import DataBudget, DataSource

        source = DataSource.parse(self.source, self.epsilon, self.gamma)
        return [DataBudget(source, n).label for n in self.transitions]


class MatrixSpec(_Strict):
    """One benchmark matrix (see docs/runner.md for every key)."""

    name: str = Field(description="Short name, used in reports.")
    description: str = Field("", description="What the matrix compares.")
    envs: list[Entry] = Field(min_length=1, description="Env ids (or {id, kwargs}).")
    planners: list[Entry] = Field(min_length=1, description="Planner ids (or {id, kwargs}).")
    llms: list[str] = Field(
        default_factory=lambda: ["local"],
        description="LLM specs for planners that need one: local, openai:<m>, sim:expert?...",
    )
    seeds: list[int] = Field(description="Seeds: a list [0, 1] or a range string '0-9'.")
    episodes_per_seed: int = Field(1, ge=1, le=MAX_EPISODES,
                                   description="Episodes per seed (seed = the unit).")
    caps: Caps = Field(default_factory=Caps)
    budget: Budget = Field(default_factory=Budget)
    execution: Execution = Field(default_factory=Execution)
    llm_cache: bool = Field(True, description="Answer repeated LLM requests from the cache.")
    decoding: Decoding | list[Decoding] = Field(
        "auto",
        description="How LLM planners decode: constrained (the reply is one legal plan), free "
                    "(free text, parsed), auto (constrained wherever the model can); the list "
                    "[constrained, free] makes it an axis, one cell per value.",
    )

    critic_data: list[CriticData] = Field(
        default_factory=list,
        description="Critic data budgets: for each env, source and budget one critic is trained "
                    "(or reused from the cache) before the episodes, and every planner that "
                    "uses a critic runs once per budget.",
    )

    @field_validator("critic_data")
    @classmethod
    def _critic_data(cls, value: list[CriticData]) -> list[CriticData]:
        labels = []
        for entry in value:
            try:
                labels += entry.budgets()
            except CoopbenchError as exc:
                raise ValueError(str(exc)) from None
        if len(set(labels)) != len(labels):
            raise ValueError("a source and budget is listed twice")
        return value

    def critic_budgets(self) -> list[str]:
        """The critic data axis: one label per (source, budget), in spec order."""
        return [label for entry in self.critic_data for label in entry.budgets()]

    @field_validator("decoding")
    @classmethod
    def _decoding(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value or len(set(value)) != len(value):
                raise ValueError("a decoding axis lists distinct values")
            if "auto" in value and len(value) > 1:
                raise ValueError("auto resolves to constrained or free: list those instead")
        return value

    def decodings(self) -> list[str]:
        """The decoding axis: one value per cell variant."""
        return list(self.decoding) if isinstance(self.decoding, list) else [self.decoding]

    @field_validator("envs", "planners", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"id": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("envs", "planners")
    @classmethod
    def _unique(cls, value: list[Entry]) -> list[Entry]:
        ids = [e.id for e in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(
                f"{', '.join(twice)} listed more than once; results are keyed by id, so "
                "register a variant id for other kwargs"
            )
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> Any:
        """A range string is counted before it is expanded: a typo must not fill memory."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, str):
            try:
                return parse_seeds(value)
            except SeedsError as exc:
                raise ValueError(exc.why) from None
        if isinstance(value, list):
            too_many = check_seed_count(len(value))
            if too_many:
                raise ValueError(too_many)
            if any(isinstance(s, int) and not 0 <= s < SEED_LIMIT for s in value):
                raise ValueError(f"seeds must be non-negative and below 2**32 ({SEED_LIMIT:,})")
        return value

    @field_validator("llms")
    @classmethod
    def _llms(cls, value: list[str]) -> list[str]:
        from coopbench import llm

        for spec in value:
            try:
                llm.parse(spec)
            except CoopbenchError as exc:
                raise ValueError(str(exc)) from None
        return value

    def fingerprint_parts(self) -> dict[str, Any]:
        """What makes an already-finished episode of a cell mean what it meant."""
        return {
            "format": FORMAT_VERSION,
            "envs": {e.id: e.kwargs for e in self.envs},
            "planners": {p.id: p.kwargs for p in self.planners},
            "caps": self.caps.model_dump(),
        }


def fingerprint(parts: dict[str, Any]) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_spec(path: Path | str) -> MatrixSpec:
    """Read and validate a spec file; every problem is one `ConfigError` line."""
    data = load_yaml(path, "matrix spec")  # not UTF-8, too deep or too large: one line
    return parse_spec(data, source=str(path))


def parse_spec(data: Any, source: str = "<spec>") -> MatrixSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a matrix spec is a mapping of keys (name, envs, ...)")
    try:
        return MatrixSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """The first validation error as `key 'a.b': problem; allowed: ...`."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see docs/runner.md"
        where = ".".join(loc[:-1]) or "top level"
        return f"unknown key {loc[-1]!r} at {where}; allowed: {allowed}"
    if error["type"] == "missing":
        field = _field_help(loc)
        return f"missing key {key!r}" + (f" ({field})" if field else "")
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    if loc[:1] == ["llms"]:
        shown = ""  # the message names the spec, with any credential in it masked
    field = _field_help(loc)
    return f"bad value for key {key!r}: {message}{shown}" + (f"; {field}" if field else "")


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    """The pydantic model that a location path points into (list indices skipped)."""
    model: type[BaseModel] = MatrixSpec
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or ())]
        nxt = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nxt is None:
            return None
        model = nxt
    return model


def _field_help(loc: list[str]) -> str:
    parent = _model_at([p for p in loc[:-1]])
    name = next((p for p in reversed(loc) if not p.isdigit()), "")
    if parent is None or name not in parent.model_fields:
        return ""
    return parent.model_fields[name].description or ""
