"""Model spec strings -> a parsed `ModelSpec`.

`local`, `local:<name>` (a packaged model, e.g. `local:qwen2.5-coder-1.5b`), `local:<file.gguf>`,
`openai:<model>`, `openai-compat:<base_url>#<model>`,
`sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]`. Malformed specs raise
`CoopbenchError` with one line naming what is wrong, so the CLI can print it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from coopbench.core.errors import CoopbenchError
from coopbench.llm.model_files import named, spec_name

SCHEMES = ("local", "openai", "openai-compat", "sim")
SIM_POLICIES = ("expert", "random")
_SIM_PARAMS = {"noise": float, "garble": float, "seed": int, "rationality": float}
FORMS = (
    "local, local:<name>, local:<file.gguf>, openai:<model>, openai-compat:<base_url>#<model>, "
    "sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]"
)


@dataclass(frozen=True)
class ModelSpec:
    """One parsed spec: `scheme` plus what that scheme needs."""

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
        query = "&".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"sim:{self.model}?{query}"


def _bad(spec: str, why: str) -> CoopbenchError:
    return CoopbenchError(f"bad model spec {spec!r}: {why} (forms: {FORMS})")


def parse(spec: str) -> ModelSpec:
    """Parse a spec string; raise `CoopbenchError` on anything malformed."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "empty")
    spec = spec.strip()
    scheme, _, rest = spec.partition(":")
    if scheme == "local":
        if _ and not rest:
            raise _bad(spec, "local: needs a path to a .gguf file or a packaged model name")
        packaged = named(rest) if rest else None
        if packaged is not None:  # a name wins over a file of that name; write ./name for that
            return ModelSpec("local", model=spec_name(packaged))
        return ModelSpec("local", path=rest)
    if scheme == "openai":
        if not rest or any(c.isspace() for c in rest):
            raise _bad(spec, "openai: needs a model name, e.g. openai:gpt-4o-mini")
        return ModelSpec("openai", model=rest)
    if scheme == "openai-compat":
        return _parse_compat(spec, rest)
    if scheme == "sim":
        return _parse_sim(spec, rest)
    raise _bad(spec, f"unknown scheme {scheme!r}")


def _parse_compat(spec: str, rest: str) -> ModelSpec:
    base_url, sep, model = rest.rpartition("#")
    if not sep or not base_url or not model.strip():
        raise _bad(spec, "openai-compat: needs <base_url>#<model>")
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise _bad(spec, f"base URL {base_url!r} is not an http(s) URL")
    if url.username or url.password or url.query:
        shown = spec.replace(f"?{url.query}", "?***" if url.query else "")
        if "@" in url.netloc:
            shown = shown.replace(url.netloc, "***@" + url.netloc.rpartition("@")[2], 1)
        raise _bad(shown, "put keys in the environment or the config file, not in the URL")
    return ModelSpec("openai-compat", model=model.strip(), base_url=base_url.rstrip("/"))


def _parse_sim(spec: str, rest: str) -> ModelSpec:
    policy, _, query = rest.partition("?")
    policy = policy or "expert"
    if policy not in SIM_POLICIES:
        raise _bad(spec, f"unknown sim policy {policy!r} (known: {', '.join(SIM_POLICIES)})")
    params: dict[str, float | int] = {"noise": 0.0, "garble": 0.0, "seed": 0}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _bad(spec, f"malformed query {query!r}") from None
    for key, value in pairs:
        if key not in _SIM_PARAMS:
            raise _bad(spec, f"unknown sim parameter {key!r} (known: {', '.join(_SIM_PARAMS)})")
        try:
            params[key] = _SIM_PARAMS[key](value)
        except ValueError:
            raise _bad(spec, f"{key}={value!r} is not a number") from None
    for key in ("noise", "garble"):
        if not 0.0 <= float(params[key]) <= 1.0:
            raise _bad(spec, f"{key} must lie in [0, 1]")
    if params["seed"] < 0:
        raise _bad(spec, "seed must be >= 0")
    if "rationality" in params and not 0.0 < float(params["rationality"]) < float("inf"):
        raise _bad(spec, "rationality must be a positive number")
    return ModelSpec("sim", model=policy, params=params)
