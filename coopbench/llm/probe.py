"""Ask an OpenAI-compatible endpoint what it can do, with a few tiny requests.

- **Constrained choice**: the request forms are tried in the order `guided_choice` (vLLM),
  `grammar` (llama.cpp), `json_schema` (`response_format`; Ollama, OpenAI, and most others).
  A form counts only if the server answers 2xx *and* the reply is exactly one of two choices
  no model would give freely to the question asked (`PROBE_CHOICES`): a server that silently
  ignores the field answers the question instead, and that is "not supported".
- **Scoring**: `/v1/completions` with `echo` and `logprobs`, first for a list of two prompts
  in one request (`batched`), else one prompt per request (`per-prompt`), else `sampled`.
  The echoed log-probabilities must be usable, not just present (`check_echoes`).

Error rules, so a run never spends its retries on a feature the server lacks: a
deterministic refusal (HTTP 400/404/405/422/501) means "not supported" at once; 500/502/503
(and a 2xx body that is not JSON) is asked once more and a second refusal means "not
supported"; 429, timeouts and connection
errors are transient and retried by the run's `RetryPolicy` (the `Target` does that);
401/403 fail at once with one line (the `Target` raises them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from coopbench.llm.base import Message
from coopbench.llm.capabilities import Capabilities
from coopbench.llm.forms import choice_fields, decode_choice, max_tokens

PARTS = ("constrained", "scoring")
PROBE_ORDER = ("guided_choice", "grammar", "json_schema")
DETERMINISTIC_STATUS = frozenset({400, 404, 405, 422, 501})
MALFORMED = 200  # a 2xx whose body is not JSON: asked again once, like a 500
ASK_TWICE_STATUS = frozenset({500, 502, 503, MALFORMED})
REFUSAL_STATUS = DETERMINISTIC_STATUS | (ASK_TWICE_STATUS - {MALFORMED})

PROBE_CHOICES = ("zebra-7", "kiwi-3")
PROBE_MAX_TOKENS = 32  # room to spare: a model that thinks first must not run out mid-choice
PROBE_MESSAGES: tuple[Message, ...] = (
    {"role": "system", "content": "You are a helpful assistant. Answer in one word."},
    {"role": "user", "content": "What colour is the sky on a clear day?"},
)
# A line said twice, then a third time up to its last word: any language model, however
# small, copies it. Aligned log-probabilities make the copied last word far likelier than an
# odd one, and the copied line itself likely; log-probabilities off by one position do not.
SCORE_BASE = "one two three four five six\none two three four five six\none two three four five"
SCORE_ENDINGS = (" six", " zebra")
MIN_MARGIN = 1.0  # nats the copied word must beat the odd one by (a real model: ~10)
MIN_LINE_MEAN = -2.5  # mean log-probability per token of the copied line (a real model: ~ -0.1)
PREFIX_TOLERANCE = 0.5  # the shared prefix must score alike in both prompts (numeric noise)

T = TypeVar("T")


class Refused(Exception):
    """A probe request answered with a status that may mean "no such feature"."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(f"HTTP {status}" + (f": {message}" if message else ""))
        self.status = status
        self.message = message


class Target(Protocol):
    """What the probe sends through: one endpoint and model, with the run's retries for
    transient failures; raises `Refused` for a status in `REFUSAL_STATUS`, and
    `Refused(MALFORMED, ...)` for a 2xx body that is not JSON."""

    async def chat(self, messages: Sequence[Message], max_tokens: int,
                   fields: dict[str, Any]) -> str: ...

    async def completions(self, prompt: str | list[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Finding:
    """One probed capability: its value (None: missing), why it is missing, and when."""

    value: str | None
    notes: tuple[str, ...]
    probed_at: str


async def probe(target: Target) -> Capabilities:
    """Both capabilities, freshly probed."""
    found = await probe_parts(target, PARTS)
    return Capabilities(
        constrained=found["constrained"].value,
        scoring=found["scoring"].value or "sampled",
        source="probed",
        probed_at=found["constrained"].probed_at,
        notes=found["constrained"].notes + found["scoring"].notes,
    )


async def probe_parts(target: Target, parts: Sequence[str]) -> dict[str, Finding]:
    """The named parts of `PARTS`, each probed once, in order."""
    found: dict[str, Finding] = {}
    for part in parts:
        if part == "constrained":
            value, notes = await probe_constrained(target)
        elif part == "scoring":
            value, notes = await probe_scoring(target)
        else:
            raise ValueError(f"unknown capability {part!r}; one of {PARTS}")
        found[part] = Finding(value, tuple(notes), now_iso())
    return found


async def probe_constrained(target: Target) -> tuple[str | None, list[str]]:
    """The first form in `PROBE_ORDER` the server honours, else None and why."""
    tried = []
    for form in PROBE_ORDER:
        fields = choice_fields(form, PROBE_CHOICES)
        room = max_tokens(form, PROBE_CHOICES, PROBE_MAX_TOKENS)
        reply, why = await ask(lambda f=fields, r=room: target.chat(PROBE_MESSAGES, r, f))
        if reply is not None:
            if decode_choice(form, reply).strip() in PROBE_CHOICES:
                return form, []
            why = f"ignored (answered {_short(reply)!r})"
        tried.append(f"{form} {why}")
    return None, ["constrained choice: none works (" + "; ".join(tried) + ")"]


async def probe_scoring(target: Target) -> tuple[str, list[str]]:
    """`batched`, `per-prompt` or `sampled`, and why the better forms are not usable."""
    prompts = [SCORE_BASE + ending for ending in SCORE_ENDINGS]
    body, why = await ask(lambda: target.completions(list(prompts)))
    if body is not None:
        echoes = echoes_of(body, len(prompts))
        why = echoes if isinstance(echoes, str) else check_echoes(echoes, prompts)
        if not why:
            return "batched", []
    batched_why = why
    singles: list[tuple[str, list[Any], list[Any]]] = []
    for prompt in prompts:
        body, why = await ask(lambda p=prompt: target.completions(p))
        if body is None:
            break
        echoes = echoes_of(body, 1)
        if isinstance(echoes, str):
            why = echoes
            break
        singles.extend(echoes)
    if len(singles) == len(prompts):
        why = check_echoes(singles, prompts)
        if not why:
            return "per-prompt", []
    return "sampled", [f"scoring: no usable prompt log-probabilities (a list of prompts: "
                       f"{batched_why}; one prompt: {why}); scores come from sampled replies"]


async def ask(call: Callable[[], Awaitable[T]]) -> tuple[T | None, str]:
    """One probe request under the error rules: (answer, "") or (None, why not)."""
    try:
        return await call(), ""
    except Refused as first:
        if first.status not in ASK_TWICE_STATUS:
            return None, _refusal(first)
        try:
            return await call(), ""
        except Refused as second:
            return None, _refusal(second) + (" twice" if second.status == first.status else "")


def echoes_of(body: Any, n: int) -> list[tuple[str, list[Any], list[Any]]] | str:
    """(echoed text, token_logprobs, text_offset) per prompt, in prompt order; or why not."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or len(choices) != n:
        count = len(choices) if isinstance(choices, list) else "no"
        return f"{count} choices for {n} prompt(s)"
    by_index: dict[int, tuple[str, list[Any], list[Any]]] = {}
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            return "a choice is not an object"
        index = choice.get("index", position)
        logprobs = choice.get("logprobs")
        lps = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
        offsets = logprobs.get("text_offset") if isinstance(logprobs, dict) else None
        if not isinstance(lps, list) or not isinstance(offsets, list):
            return "no log-probabilities in the answer"
        by_index[index] = (str(choice.get("text") or ""), lps, offsets)
    if set(by_index) != set(range(n)):
        return "choice indices do not match the prompts"
    return [by_index[i] for i in range(n)]


def check_echoes(echoes: Sequence[tuple[str, list[Any], list[Any]]],
                 prompts: Sequence[str]) -> str:
    """Why the echoed log-probabilities of the two probe prompts are unusable; "" if usable.

    Usable: the prompt is echoed; one log-probability per offset; offsets that rise through
    the prompt; the shared prefix scored alike in both; the copied line likely; the copied
    last word likelier than the odd one by `MIN_MARGIN`. The last three catch a server whose
    values sit one position off (each token given the probability of its neighbour).
    """
    split = len(SCORE_BASE)
    line_start = SCORE_BASE.rindex("\n") + 1
    prefixes, endings, line = [], [], []
    for (text, lps, offsets), prompt in zip(echoes, prompts, strict=True):
        if not text.startswith(prompt):
            return "the prompt is not echoed"
        if len(lps) != len(offsets):
            return f"{len(lps)} log-probabilities for {len(offsets)} offsets"
        if not all(_is_number(o) and math.isfinite(o) for o in offsets):
            return "non-numeric text offsets"
        inside = [o for o in offsets if o < len(prompt)]
        if not inside or inside[0] < 0 or inside != sorted(inside):
            return "text offsets do not rise through the prompt"
        pairs = list(zip(offsets, lps, strict=True))
        if any(not (lp is None or _is_number(lp)) for o, lp in pairs if o < len(prompt)):
            return "non-numeric log-probabilities"
        ending = [lp for o, lp in pairs if split <= o < len(prompt)]
        if not ending or any(lp is None for lp in ending):
            return "no log-probability for the prompt's last word"
        prefixes.append([lp for o, lp in pairs if o < split])
        endings.append(sum(ending))
        line.append([lp for o, lp in pairs if line_start <= o < split and lp is not None])
    first, second = prefixes
    if len(first) != len(second) or any(
        (a is None) != (b is None) or (a is not None and abs(a - b) > PREFIX_TOLERANCE)
        for a, b in zip(first, second, strict=False)
    ):
        return "not aligned (the same prefix scores differently in the two prompts)"
    mean = sum(line[0]) / len(line[0]) if line[0] else -math.inf
    if mean < MIN_LINE_MEAN:
        return f"not aligned (a copied line scores {mean:.1f} per token)"
    if endings[0] - endings[1] < MIN_MARGIN:
        return (f"not aligned (the copied word scores {endings[0]:.1f}, an odd one "
                f"{endings[1]:.1f})")
    return ""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _refusal(exc: Refused) -> str:
    if exc.status == MALFORMED:
        return "a body that is not JSON"
    return f"HTTP {exc.status}" + (f" ({_short(exc.message)})" if exc.message else "")


def _short(text: str, limit: int = 60) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _is_number(value: Any) -> bool:
    """An int or float that is not NaN (a log-probability may be -inf)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
