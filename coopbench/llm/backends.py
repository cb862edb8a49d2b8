"""The LLM backend registry: one entry per spec scheme, built-ins and plug-ins alike.

The spec parser (`llm.spec.parse`), `llm.make`, `coopbench llm backends` and the CLI's help
for `--llm` read this one table instead of lists of their own. An entry (`BackendEntry`)
says how to parse its part of a spec string, how to build the backend (a `"module:attr"`
imported only then, so building `sim` never imports llama_cpp or openai), the spec forms
and a help line for users, and what the backend can do (declared `Capabilities`, or
`"probed"` where an HTTP endpoint is asked at run time).

Third-party packages add schemes through the entry-point group `coopbench.llms`: the entry
point's name is the scheme, its value a `BackendEntry`. They load with the env and planner
registries' code and policy (`coopbench.core.registry.load_plugins`): declared capabilities
that are wrong stop with one line naming the plug-in; any other failure skips the plug-in
with one line, never a Python warning. Plug-ins are looked for only when a spec's scheme is
not built in, or when the whole table is listed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

from coopbench.core.errors import CapsError, CoopbenchError
from coopbench.core.registry import load_entry_point, load_plugins, plugin_source
from coopbench.llm.capabilities import CONSTRAIN_FORMS, SCORING_FORMS, Capabilities
from coopbench.llm.config import LLMConfig
from coopbench.llm.spec import ModelSpec, parse_compat, parse_local, parse_openai, parse_sim

GROUP = "coopbench.llms"
PROBED = "probed"  # capabilities asked of the endpoint at run time, not declared
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")  # as URL schemes are spelled, lower case
BACKEND_ATTRS = ("model_id", "simulated", "generate", "score")  # what `Model` relies on
_DECLARABLE = {"constrained", "scoring", "auto"}


@dataclass(frozen=True)
class BackendEntry:
    """One scheme: how its specs parse, how its backend is built, and what to tell users.

    `factory` is called as `factory(spec: ModelSpec, config: LLMConfig)` and returns the
    backend (a `coopbench.llm.request.Backend`); as a `"module:attr"` string it is imported
    only when a model is built. `parse(spec, rest)` turns the text after `scheme:` into a
    `ModelSpec`; without one, `rest` is kept as the spec's `model`. A plug-in's `ModelSpec`
    holds `scheme` and `model` only, so its canonical form `scheme:model` parses back to it.
    `price_name(spec)` names the model in the price table (default: the canonical spec).
    """

    scheme: str
    factory: str | Callable[..., Any]
    forms: tuple[str, ...]
    help: str
    capabilities: Capabilities | Mapping[str, Any] | str = PROBED
    parse: str | Callable[[str, str], ModelSpec] | None = None
    price_name: Callable[[ModelSpec], str] | None = None
    source: str = "builtin"  # the package that provides it

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, str) or not SCHEME.match(self.scheme):
            raise CoopbenchError(f"LLM scheme {self.scheme!r} is not a lower-case word "
                                 "(letters, digits, + . -)")
        forms = (self.forms,) if isinstance(self.forms, str) else tuple(self.forms)
        if not forms or not all(f == self.scheme or f.startswith(f"{self.scheme}:")
                                for f in forms):
            raise CoopbenchError(f"LLM scheme {self.scheme!r}: every form must start with "
                                 f"'{self.scheme}:' (or be {self.scheme!r} alone)")
        object.__setattr__(self, "forms", forms)
        object.__setattr__(self, "help", " ".join(str(self.help).split()))  # one line
        object.__setattr__(self, "capabilities", _declared(self.scheme, self.capabilities))

    @property
    def builtin(self) -> bool:
        return self.source == "builtin"

    def _who(self) -> str:
        return f"llm scheme {self.scheme!r}" + ("" if self.builtin else f" ({self.source})")

    def parse_spec(self, spec: str, rest: str) -> ModelSpec:
        """`spec` (whose text after `scheme:` is `rest`) as a `ModelSpec`; one line if bad."""
        if self.parse is None:
            return ModelSpec(self.scheme, model=rest)
        try:
            parsed = load_entry_point(self.parse)(spec, rest)
        except CoopbenchError:
            raise
        except Exception as exc:  # a plug-in's bug: one line naming it, not a traceback
            raise CoopbenchError(f"{self._who()} failed to parse {spec!r}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(parsed, ModelSpec) or parsed.scheme != self.scheme:
            raise CoopbenchError(f"{self._who()}: parsing {spec!r} gave {parsed!r}, not a "
                                 f"ModelSpec of scheme {self.scheme!r}")
        if not self.builtin and (parsed.path or parsed.base_url or parsed.params):
            raise CoopbenchError(f"{self._who()}: a plug-in's ModelSpec keeps everything in "
                                 "`model` (its canonical form is scheme:model)")
        return parsed

    def build(self, parsed: ModelSpec, config: LLMConfig) -> tuple[Any, str]:
        """(backend, price name) for a spec this entry parsed."""
        try:
            factory = load_entry_point(self.factory)
        except CoopbenchError as exc:
            raise CoopbenchError(f"{self._who()}: {exc}") from None
        backend = factory(parsed, config)
        missing = [a for a in BACKEND_ATTRS if not hasattr(backend, a)]
        if missing:
            raise CoopbenchError(f"{self._who()}: its backend {type(backend).__name__} lacks "
                                 f"{', '.join(missing)}")
        price = self.price_name(parsed) if self.price_name else parsed.canonical()
        return backend, price

    def caps_summary(self) -> str:
        """The capabilities in a few words, for listings."""
        caps = self.capabilities
        if not isinstance(caps, Capabilities):
            return PROBED
        auto = "" if caps.auto == "constrained" else f", auto {caps.auto}"
        return f"choice {caps.constrained or 'none'}, scoring {caps.scoring}{auto}"

    def to_json(self) -> dict[str, Any]:
        caps = self.capabilities
        return {
            "scheme": self.scheme,
            "forms": list(self.forms),
            "help": self.help,
            "capabilities": caps.to_json() if isinstance(caps, Capabilities) else caps,
            "source": self.source,
        }


def _declared(scheme: str, caps: Any) -> Capabilities | str:
    """Checked declared capabilities: a `Capabilities`, a dict of its fields, or "probed"."""
    where = f"llm scheme {scheme!r}: capabilities"
    if caps == PROBED or isinstance(caps, Capabilities):
        return caps
    if not isinstance(caps, Mapping):
        raise CapsError(f"{where} must be a dict, a Capabilities or {PROBED!r}, not {caps!r}")
    unknown = sorted(set(caps) - _DECLARABLE)
    if unknown:
        raise CapsError(f"{where}: unknown key {unknown[0]!r} (known: "
                        f"{', '.join(sorted(_DECLARABLE))})")
    constrained, scoring = caps.get("constrained"), caps.get("scoring", "sampled")
    if constrained not in (None, "native", *CONSTRAIN_FORMS):
        raise CapsError(f"{where}: constrained must be native, {', '.join(CONSTRAIN_FORMS)} or "
                        f"None, not {constrained!r}")
    if scoring not in SCORING_FORMS:
        raise CapsError(f"{where}: scoring must be one of {', '.join(SCORING_FORMS)}, "
                        f"not {scoring!r}")
    auto = caps.get("auto", "constrained")
    if auto not in ("constrained", "free"):
        raise CapsError(f"{where}: auto must be constrained or free, not {auto!r}")
    return Capabilities(constrained=constrained, scoring=scoring, auto=auto)


# -- the built-ins: their factories import their backend modules only when called ----------


def _build_local(spec: ModelSpec, config: LLMConfig) -> Any:
    from coopbench.llm.local import LocalBackend

    return LocalBackend.for_spec(spec)


def _build_remote(spec: ModelSpec, config: LLMConfig) -> Any:
    from coopbench.llm.remote import RemoteBackend

    return RemoteBackend.for_spec(spec, config)


def _build_sim(spec: ModelSpec, config: LLMConfig) -> Any:
    from coopbench.llm.sim import SimBackend

    return SimBackend(spec)


BUILTINS = (
    BackendEntry(
        "local", _build_local, ("local", "local:<name>", "local:<file.gguf>"),
        "llama.cpp in this process: the packaged Qwen2.5-Coder (0.5B by default) or any GGUF",
        Capabilities(constrained="native", scoring="token-tree"), parse=parse_local),
    BackendEntry(
        "openai", _build_remote, ("openai:<model>",),
        "OpenAI's API (OPENAI_API_KEY)", PROBED, parse=parse_openai,
        price_name=lambda spec: spec.model),
    BackendEntry(
        "openai-compat", _build_remote, ("openai-compat:<base_url>#<model>",),
        "any OpenAI-compatible server: vLLM, Ollama, llama.cpp's server, LM Studio",
        PROBED, parse=parse_compat),
    BackendEntry(
        "sim", _build_sim, ("sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]",),
        "a simulated LLM answering from the env's expert, for tests and controlled studies",
        Capabilities(constrained="native", scoring="simulated", auto="free"), parse=parse_sim),
)


class BackendRegistry:
    """Schemes -> entries: the built-ins at once, plug-ins on the first read that needs them."""

    def __init__(self, builtins: Iterable[BackendEntry], group: str = GROUP) -> None:
        self.group = group
        self._builtins = {e.scheme: e for e in builtins}
        self._plugins: dict[str, BackendEntry] = {}
        self._loaded = False

    def reload(self) -> None:
        """Forget the plug-ins and look for them again on the next read (after an install)."""
        self._plugins.clear()
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            load_plugins("llm", self.group, self._install)
        except CapsError:
            self.reload()  # the next read tries again (and fails the same way)
            raise

    def _install(self, ep: EntryPoint, entry: Any) -> None:
        if not isinstance(entry, BackendEntry):
            raise CoopbenchError(f"{ep.value} is a {type(entry).__name__}, not a "
                                 "coopbench.llm.backends.BackendEntry")
        if entry.scheme != ep.name:
            raise CoopbenchError(f"its entry is for scheme {entry.scheme!r}, but the entry "
                                 f"point is named {ep.name!r} (name it after the scheme)")
        source = plugin_source(ep)
        if entry.scheme in self._builtins:
            raise CoopbenchError(f"scheme {entry.scheme!r} is built in")
        if entry.scheme in self._plugins:
            raise CoopbenchError(f"scheme {entry.scheme!r} is already provided by "
                                 f"{self._plugins[entry.scheme].source}")
        self._plugins[entry.scheme] = dataclasses.replace(entry, source=source)

    def entries(self) -> list[BackendEntry]:
        """Every entry: the built-ins in their order, then plug-ins by scheme."""
        self._ensure_loaded()
        return [*self._builtins.values(), *sorted(self._plugins.values(), key=lambda e: e.scheme)]

    def builtins(self) -> list[BackendEntry]:
        return list(self._builtins.values())

    def get(self, scheme: str) -> BackendEntry | None:
        if scheme in self._builtins:  # a built-in scheme never waits for plug-ins
            return self._builtins[scheme]
        self._ensure_loaded()
        return self._plugins.get(scheme)

    def entry_for(self, scheme: str, spec: str | None = None) -> BackendEntry:
        """The entry for `scheme`; an unknown one is one line listing the registered schemes."""
        entry = self.get(scheme)
        if entry is not None:
            return entry
        known = [e.scheme for e in self.entries()]
        close = difflib.get_close_matches(scheme, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise CoopbenchError(
            f"bad model spec {spec if spec is not None else scheme!r}: unknown scheme "
            f"{scheme!r}{hint} (registered: {', '.join(known)}; `coopbench llm backends` "
            "lists their forms)")


registry = BackendRegistry(BUILTINS)


def entry_for(scheme: str, spec: str | None = None) -> BackendEntry:
    return registry.entry_for(scheme, spec)


def entries() -> list[BackendEntry]:
    return registry.entries()


def schemes() -> list[str]:
    return [e.scheme for e in registry.entries()]


def forms_text(scheme: str | None = None) -> str:
    """The spec forms of `scheme`, or of every registered scheme, comma-separated."""
    chosen = [registry.entry_for(scheme)] if scheme is not None else registry.entries()
    return ", ".join(form for entry in chosen for form in entry.forms)


def spec_help(prefix: str = "LLM spec") -> str:
    """Help for a `--llm`-like option: the built-in forms from the table, and where the rest
    are listed (help is written when the CLI starts, before any plug-in is looked for)."""
    forms = ", ".join(form for entry in registry.builtins() for form in entry.forms)
    return f"{prefix}: {forms}, or a plug-in's (`coopbench llm backends` lists all)."
