"""Versioned registries of environments and planners, with lazy imports and plug-ins.

Ids look like `family/name-vN`. An entry point is a `"module:attr"` string that is imported
only when the id is made, so listing what is registered never imports torch, Overcooked-AI
or pymunk. Third-party packages register through the entry-point groups `coopbench.envs` and
`coopbench.planners`: each entry point names a function `register(registry)` that is called
once, the first time the registry is read.

Each id carries typed capabilities (`Spec.caps`, a `coopbench.core.caps` model) that the
runner reads to skip cells that cannot work; a bad key or value is refused by `register`
(`CapsError`, one line). A plug-in whose caps are refused stops every read of the registry
with that line, naming the plug-in; one that fails otherwise (an import error, a typo in its
entry point, a bug) is skipped and said in one line through `report_problem` (stderr; the CLI
prints it in red), never as a Python warning. `load_plugins` is that policy, shared with the
LLM backend registry (`coopbench.llm.backends`, group `coopbench.llms`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from coopbench.core.caps import Capabilities, EnvCaps, PlannerCaps
from coopbench.core.errors import CapsError, CoopbenchError, UnknownIdError

CAPS_BY_KIND: dict[str, type[Capabilities]] = {"env": EnvCaps, "planner": PlannerCaps}
ID_PATTERN = re.compile(r"^(?P<family>[a-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.+-]+?)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class Spec:
    """A registered id: how to build it, its defaults and what it can do."""

    id: str
    entry_point: str | Callable[..., Any]
    description: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    caps: Capabilities = field(default_factory=Capabilities)  # EnvCaps / PlannerCaps
    source: str = "builtin"

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The id without family and version: `name`."""
        return self.base.split("/", 1)[1]

    @property
    def base(self) -> str:
        """The id without its version: `family/name`."""
        return self.id.rsplit("-v", 1)[0]

    @property
    def version(self) -> int:
        return int(self.id.rsplit("-v", 1)[1])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "kwargs": self.kwargs,
            "caps": self.caps.model_dump(mode="json"),
            "source": self.source,
        }


def _print_problem(line: str) -> None:
    print(f"coopbench: {line}", file=sys.stderr)


_reporter: list[Callable[[str], None]] = [_print_problem]


def set_problem_reporter(report: Callable[[str], None]) -> None:
    """Where a skipped plug-in is said (the CLI: one red line on stderr)."""
    _reporter[0] = report


def report_problem(line: str) -> None:
    _reporter[0](line)


def load_entry_point(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import `"package.module:attr"` (or return a callable as is)."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing and module_name != missing and not module_name.startswith(f"{missing}."):
            # the module is there; an import inside it failed (a name moved, a typo)
            raise CoopbenchError(f"cannot import {module_name!r}: {exc}") from exc
        raise CoopbenchError(
            f"cannot import {module_name!r} ({exc}); is the package that provides it installed?"
        ) from exc
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise CoopbenchError(f"{module_name!r} has no attribute {attr!r}") from exc
    return obj


def plugin_source(ep: EntryPoint) -> str:
    """The distribution (package) that provides `ep`, shown in listings."""
    return ep.dist.name if ep.dist is not None else ep.name


def load_plugins(kind: str, group: str, install: Callable[[EntryPoint, Any], None]) -> None:
    """`install(ep, ep.load())` for every entry point of `group`, under the plug-in policy.

    A `CapsError` (the plug-in declared its capabilities wrong) stops with one line naming the
    plug-in; any other failure (an import error, a typo in the entry point, a bug) skips that
    plug-in and says so in one line through `report_problem`, never as a Python warning. Every
    registry of plug-ins (envs, planners, LLM backends) loads through here.
    """
    for ep in entry_points(group=group):
        try:
            install(ep, ep.load())
        except CapsError as exc:  # it declared caps wrong: one line that says so, stop
            raise CapsError(f"{kind} plug-in {ep.name!r} ({ep.value}): {exc}") from None
        except Exception as exc:  # a broken plug-in must not take down the whole CLI
            problem = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            report_problem(f"{kind} plug-in {ep.name!r} ({ep.value}) failed to register, "
                           f"skipped: {problem}")


class Registry:
    """Ids -> specs for one kind of thing (`env` or `planner`)."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Iterable[str] = (),
        caps: type[Capabilities] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        # the model every registration's caps are checked against (by default the kind's)
        self.caps = caps or CAPS_BY_KIND.get(kind, Capabilities)
        self._builtins = tuple(builtins)
        self._specs: dict[str, Spec] = {}
        self._loaded = False
        self._source = "builtin"

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        id: str,
        entry_point: str | Callable[..., Any],
        *,
        description: str = "",
        caps: Capabilities | Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Spec:
        """Register `id`; `kwargs` become defaults passed to the entry point.

        `caps` is this registry's caps model or a dict of its fields; an unknown key or a bad
        value raises `CapsError` (one line). `flags` is the deprecated name of a dict `caps`.
        """
        if not ID_PATTERN.match(id):
            raise CoopbenchError(f"{self.kind} id {id!r} is not of the form family/name-vN")
        where = f"{self.kind} {id!r}"
        if flags is not None and caps is not None:
            raise CapsError(f"{where}: pass `caps=` only (`flags=` is its deprecated name)")
        typed = self.caps.from_flags(flags, where) if flags is not None else \
            self.caps.parse(caps, where)
        spec = Spec(id, entry_point, description, dict(kwargs), typed, self._source)
        self._specs[id] = spec
        return spec

    def reload(self) -> None:
        """Forget everything and rediscover built-ins and plug-ins on the next read.

        Useful after installing a plug-in into a running process (and in tests).
        """
        self._specs.clear()
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtins:
            load_entry_point(f"{module}:register")(self)

        def install(ep: EntryPoint, register: Any) -> None:
            self._source = plugin_source(ep)
            try:
                register(self)
            finally:
                self._source = "builtin"

        try:
            load_plugins(self.kind, self.group, install)
        except CapsError:
            self._specs.clear()  # the next read tries again (and fails the same way)
            self._loaded = False
            raise

    # -- lookup ---------------------------------------------------------------------------

    def specs(self) -> list[Spec]:
        self._ensure_loaded()
        return sorted(self._specs.values(), key=lambda s: s.id)

    def ids(self) -> list[str]:
        return [s.id for s in self.specs()]

    def spec(self, id: str) -> Spec:
        """The spec for `id`; an unversioned `family/name` means its highest version."""
        self._ensure_loaded()
        if id in self._specs:
            return self._specs[id]
        versions = [s for s in self._specs.values() if s.base == id]
        if versions:
            return max(versions, key=lambda s: s.version)
        if "/" not in id:  # a short name (`random-v0`, `random`) naming exactly one family
            short = [s for s in self._specs.values() if id in (s.id.split("/", 1)[1], s.name)]
            if len({s.base for s in short}) == 1:
                return max(short, key=lambda s: s.version)
        raise UnknownIdError(self._unknown_message(id))

    def _unknown_message(self, id: str) -> str:
        candidates = list(self._specs) + sorted({s.base for s in self._specs.values()})
        close = difflib.get_close_matches(id, candidates, n=3, cutoff=0.5)
        if not close:
            family = id.split("/", 1)[0]
            close = [s for s in self._specs if s.startswith(family + "/")][:3]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return (
            f"unknown {self.kind} id {id!r}{hint} "
            f"(`coopbench {self.kind}s` lists all {len(self._specs)})"
        )

    def make(self, id: str, **kwargs: Any) -> Any:
        """Build the thing registered as `id`, with registered defaults overridden by kwargs."""
        spec = self.spec(id)
        factory = load_entry_point(spec.entry_point)
        made_with = {**spec.kwargs, **kwargs}
        obj = factory(**made_with)
        with contextlib.suppress(AttributeError):  # objects with __slots__ or read-only attrs
            # as in Gymnasium, the object's spec holds the kwargs it was made with (a critic
            # cache keys on them), the registry's the defaults
            obj.spec = dataclasses.replace(spec, kwargs=made_with)
        return obj
