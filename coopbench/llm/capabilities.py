"""What a model endpoint can do, and what `decoding: auto` resolves to on it.

Two capabilities matter to the planners:

- **constrained choice**: the reply can be forced to be one of the legal plans. In-process
  backends do it natively (`"native"`); an HTTP server through one request form
  (`CONSTRAIN_FORMS`: llama.cpp's `grammar`, vLLM's `guided_choice`, a `response_format`
  JSON schema whose enum is the plans); `None` means free text only.
- **candidate scoring**: log P(candidate | prompt). The embedded model walks a token tree
  (`"token-tree"`); a server echoes prompt log-probabilities for a list of prompts in one
  request (`"batched"`) or for one prompt per request, sent concurrently (`"per-prompt"`);
  without either, scores are smoothed frequencies of sampled replies (`"sampled"`); the
  simulated model answers from its oracle (`"simulated"`).

Backends declare theirs (`declared`); HTTP endpoints are probed before a run's first episode
unless remembered, and the answer is cached beside the response cache (`coopbench.llm.probe`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from coopbench.core.errors import CoopbenchError

CONSTRAIN_FORMS = ("grammar", "guided_choice", "json_schema")
SCORING_FORMS = ("token-tree", "batched", "per-prompt", "sampled", "simulated")
DECODINGS = ("auto", "constrained", "free")


@dataclass(frozen=True)
class Capabilities:
    """One endpoint's answer to "what can you do"; JSON-able for manifests and caches."""

    constrained: str | None  # "native", one of CONSTRAIN_FORMS, or None (free text only)
    scoring: str  # one of SCORING_FORMS
    source: str = "declared"  # "declared" | "probed" | "config" | "cache"
    auto: str = "constrained"  # what `decoding: auto` becomes where `constrained` is set
    probed_at: str | None = None  # ISO time of the probe, when probed
    notes: tuple[str, ...] = ()  # one line per capability found missing, and why

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        return cls(**{**data, "notes": tuple(data.get("notes") or ())})


def resolve_decoding(requested: str, caps: Capabilities, model: str) -> str:
    """`constrained` or `free` for a planner asking `requested` of `model`.

    `auto` takes constrained decoding wherever the endpoint has it; an explicit `constrained`
    on an endpoint without it is refused, never silently run as free text.
    """
    if requested not in DECODINGS:
        raise CoopbenchError(f"decoding must be one of {', '.join(DECODINGS)}, not {requested!r}")
    if requested == "free":
        return "free"
    if caps.constrained is None:
        if requested == "constrained":
            why = f" ({'; '.join(caps.notes)})" if caps.notes else ""
            raise CoopbenchError(f"decoding: constrained, but {model} cannot constrain replies to "
                                 f"a choice{why}; use decoding: free or auto")
        return "free"
    return "constrained" if requested == "constrained" else caps.auto


def of(llm: Any) -> Capabilities:
    """The capabilities of a built model (`Model`) or a bare backend; free text and sampled
    scoring for anything that does not say."""
    ask = getattr(llm, "capabilities", None)
    if callable(ask):
        return ask()
    return Capabilities(constrained=None, scoring="sampled")
