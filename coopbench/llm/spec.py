"""Model spec strings -> a parsed `ModelSpec`.

`parse` splits off the scheme and hands the rest to that scheme's entry in the backend
registry (`coopbench.llm.backends`: the built-ins `local`, `openai`, `openai-compat`, `sim`,
and plug-ins). The built-in schemes' parsers live here. Malformed specs raise
`CoopbenchError` with one line naming what is wrong, so the CLI can print it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qsl, urlsplit

from coopbench.core.errors import CoopbenchError
from coopbench.llm.model_files import named, spec_name

SIM_POLICIES = ("expert", "random")
_SIM_PARAMS = {"noise": float, "garble": float, "seed": int, "rationality": float}


def __getattr__(name: str) -> object:
    """`SCHEMES` and `FORMS`, read from the backend registry (kept for older imports)."""
    if name in ("SCHEMES", "FORMS"):
        from coopbench.llm import backends

        return tuple(backends.schemes()) if name == "SCHEMES" else backends.forms_text()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ModelSpec:
    """One parsed spec: `scheme` plus what that scheme needs.

    A plug-in scheme keeps what names its model in `model`; its canonical form is
    `scheme:model` (or `scheme` alone), which parses back to the same spec.
    """

    scheme: str
    model: str = ""  # openai model name, sim policy, local packaged model name ("" = default)
    path: str = ""  # local: a user's GGUF file ("" = a packaged model)
    base_url: str = ""  # openai-compat: endpoint root (…/v1)
    params: dict[str, float | int] = field(default_factory=dict)  # sim: noise, garble, seed
    # (and rationality, only when given: older specs keep their canonical form and cache keys)

    def canonical(self) -> str:
        """The spec written in one normal form (sorted, defaults filled)."""
        if self.scheme == "local":
            return f"local:{self.path or self.model}" if self.path or self.model else "local"
        if self.scheme == "openai":
            return f"openai:{self.model}"
        if self.scheme == "openai-compat":
            return f"openai-compat:{self.base_url}#{self.model}"
        if self.scheme == "sim":
            query = "&".join(f"{k}={self.params[k]}" for k in sorted(self.params))
            return f"sim:{self.model}?{query}"
        return f"{self.scheme}:{self.model}" if self.model else self.scheme


def bad_spec(spec: str, why: str, scheme: str | None = None) -> CoopbenchError:
    """The one-line error for a malformed spec, with the forms of `scheme` (all when None)."""
    from coopbench.llm import backends

    return CoopbenchError(f"bad model spec {spec!r}: {why} (forms: {backends.forms_text(scheme)})")


def parse(spec: str) -> ModelSpec:
    """Parse a spec string through its scheme's entry in the backend registry
    (`coopbench.llm.backends`); raise `CoopbenchError` (one line) on anything malformed."""
    from coopbench.llm import backends

    if not isinstance(spec, str) or not spec.strip():
        raise bad_spec(str(spec), "empty")
    spec = spec.strip()
    scheme, _, rest = spec.partition(":")
    return backends.entry_for(scheme, spec).parse_spec(spec, rest)


def parse_local(spec: str, rest: str) -> ModelSpec:
    """`local`, `local:<name>` (a packaged model) or `local:<file.gguf>`."""
    if spec != "local" and not rest:
        raise bad_spec(spec, "local: needs a path to a .gguf file or a packaged model name",
                       "local")
    packaged = named(rest) if rest else None
    if packaged is not None:  # a name wins over a file of that name; write ./name for that
        return ModelSpec("local", model=spec_name(packaged))
    return ModelSpec("local", path=rest)


def parse_openai(spec: str, rest: str) -> ModelSpec:
    """`openai:<model>`."""
    if not rest or any(c.isspace() for c in rest):
        raise bad_spec(spec, "openai: needs a model name, e.g. openai:gpt-4o-mini", "openai")
    return ModelSpec("openai", model=rest)


def parse_compat(spec: str, rest: str) -> ModelSpec:
    """`openai-compat:<base_url>#<model>`; a URL with credentials is refused."""
    bad = partial(bad_spec, scheme="openai-compat")
    base_url, sep, model = rest.rpartition("#")
    if not sep or not base_url or not model.strip():
        raise bad(spec, "openai-compat: needs <base_url>#<model>")
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise bad(spec, f"base URL {base_url!r} is not an http(s) URL")
    if url.username or url.password or url.query:
        shown = spec.replace(f"?{url.query}", "?***" if url.query else "")
        if "@" in url.netloc:
            shown = shown.replace(url.netloc, "***@" + url.netloc.rpartition("@")[2], 1)
        raise bad(shown, "put keys in the environment or the config file, not in the URL")
    return ModelSpec("openai-compat", model=model.strip(), base_url=base_url.rstrip("/"))


def parse_sim(spec: str, rest: str) -> ModelSpec:
    """`sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]`."""
    bad = partial(bad_spec, scheme="sim")
    policy, _, query = rest.partition("?")
    policy = policy or "expert"
    if policy not in SIM_POLICIES:
        raise bad(spec, f"unknown sim policy {policy!r} (known: {', '.join(SIM_POLICIES)})")
    params: dict[str, float | int] = {"noise": 0.0, "garble": 0.0, "seed": 0}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad(spec, f"malformed query {query!r}") from None
    for key, value in pairs:
        if key not in _SIM_PARAMS:
            raise bad(spec, f"unknown sim parameter {key!r} (known: {', '.join(_SIM_PARAMS)})")
        try:
            params[key] = _SIM_PARAMS[key](value)
        except ValueError:
            raise bad(spec, f"{key}={value!r} is not a number") from None
    for key in ("noise", "garble"):
        if not 0.0 <= float(params[key]) <= 1.0:
            raise bad(spec, f"{key} must lie in [0, 1]")
    if params["seed"] < 0:
        raise bad(spec, "seed must be >= 0")
    if "rationality" in params and not 0.0 < float(params["rationality"]) < float("inf"):
        raise bad(spec, "rationality must be a positive number")
    return ModelSpec("sim", model=policy, params=params)
