"""The simulated LLM (`sim:<policy>?noise=<p>&garble=<q>&seed=<s>[&rationality=<b>]`).

For tests and controlled studies.

It answers from the `Oracle` the caller hands over. Each answer is a pure function of the
spec seed, the messages, the call's `seed` and the sample index (hashed), so it does not
depend on call order or on which process makes the call. Per call, one uniform draw `u`:

- `u < garble`: malformed text (no action in it). With `choices` a grammar would make that
  impossible, so the reply is a uniformly random choice instead.
- `garble <= u < garble + noise`: one of `oracle.alternatives` (restricted to `choices`
  when given; any other choice if none of the alternatives is a choice).
- otherwise: the policy's answer — `expert`: `oracle.expert`; `random`: a random
  alternative (or choice).

With `rationality=b`, a question whose oracle has a `margin` m is answered wrong with
probability 1 − σ(b·m) instead of `noise`: the "stochastic teacher" of preference-learning
benchmarks (B-Pref, Lee et al. 2021), which, like a person or an LLM, errs on close calls
(an even chance at m = 0) and rarely on clear ones. Questions without a margin keep `noise`.

Usage is estimated (`request.estimate_tokens`: 4 characters per token) and costs nothing.
Every result is flagged `simulated`.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from coopbench.core.errors import CoopbenchError
from coopbench.llm.base import Oracle
from coopbench.llm.capabilities import Capabilities
from coopbench.llm.request import (
    Reply,
    Request,
    ScoreReply,
    ScoreRequest,
    estimate_prompt_tokens,
    estimate_tokens,
)
from coopbench.llm.spec import ModelSpec

_GARBLE_FORMS = (
    "I am not sure what the agents should do here.",
    "{reversed}",
    "",
    "```\n{reversed}\n```",
    "Let me think step by step about the state",
)


class SimBackend:
    """A deterministic simulated model; see the module docstring for its policy."""

    simulated = True
    cacheable = False

    def capabilities(self, refresh: bool = False) -> Capabilities:
        """Choices are honoured when asked for, but `auto` stays free text: the simulated
        model stands in for the papers' free-text GPT-4, garbled replies included."""
        return Capabilities(constrained="native", scoring="simulated", auto="free")

    def __init__(self, spec: ModelSpec) -> None:
        self.policy = spec.model
        self.noise = float(spec.params["noise"])
        self.garble = float(spec.params["garble"])
        self.seed = int(spec.params["seed"])
        self.rationality = float(spec.params.get("rationality", 0.0))
        self.model_id = spec.canonical()

    def _rng(self, request: Request) -> np.random.Generator:
        payload = json.dumps(
            [self.seed, [dict(m) for m in request.messages], request.seed, request.sample],
            sort_keys=True,
        )
        digest = hashlib.sha256(payload.encode("utf-8")).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "little"))

    def _oracle(self, request: Request | ScoreRequest) -> Oracle:
        if request.oracle is None:
            raise CoopbenchError(
                f"{self.model_id} answers from the env's expert, but this caller passed no "
                "oracle; use a real model spec (local, openai:...) for it"
            )
        return request.oracle

    def generate(self, request: Request) -> Reply:
        oracle = self._oracle(request)
        rng = self._rng(request)
        u = float(rng.random())
        choices = list(request.choices) if request.choices is not None else None
        if choices is not None and not choices:
            raise ValueError("choices must not be empty")
        if u < self.garble:
            kind = "garble"
            text = (
                choices[int(rng.integers(len(choices)))]
                if choices
                else _garbled(oracle.expert, rng)
            )
        elif u < self.garble + self._error_rate(oracle) or self.policy == "random":
            kind = "noise"
            text = _alternative(oracle.expert, oracle.alternatives, choices, rng)
        else:
            kind = "expert"
            text = _expert(oracle.expert, choices)
        prompt = estimate_prompt_tokens(request.messages)
        return Reply(
            text=text,
            tokens_in=prompt,
            tokens_out=estimate_tokens(text),
            model=self.model_id,
            extra={"sim": kind},
        )

    def score(self, request: ScoreRequest) -> ScoreReply:
        """The answer `generate` would give (with `choices` = the candidates) holds 1 − error
        of the probability mass, the other candidates share the error: a model that is sure
        of the reply it would have given, right or wrong. Without an oracle (a prompt whose
        state is hidden) or without its answer among the candidates: uniform."""
        oracle = request.oracle
        n = len(request.candidates)
        if oracle is None or oracle.expert.strip() not in {c.strip() for c in request.candidates}:
            return ScoreReply(logprobs=[-math.log(n)] * n,  # nothing it knows is on offer
                              tokens_in=estimate_prompt_tokens(request.messages),
                              model=self.model_id, extra={"sim": "no-expert-candidate"})
        asked = Request(messages=request.messages, choices=request.candidates,
                        seed=request.seed, oracle=oracle)
        answer = self.generate(asked)
        err = min(1.0, self.garble + self._error_rate(oracle)) if self.policy == "expert" else 1.0
        if n == 1:
            logprobs = [0.0]
        elif self.policy == "random":
            logprobs = [-math.log(n)] * n
        else:
            hit = math.log(max(1.0 - err, 1e-9))
            miss = math.log(max(err, 1e-9) / (n - 1))
            logprobs = [hit if c == answer.text else miss for c in request.candidates]
        return ScoreReply(logprobs=logprobs, tokens_in=answer.tokens_in, model=self.model_id,
                          extra={"sim": answer.extra["sim"]})

    def _error_rate(self, oracle: Oracle) -> float:
        """P(a wrong but well-formed answer): `noise`, or 1 − σ(b·margin) for a rational model."""
        if self.rationality and oracle.margin is not None:
            return (1.0 - self.garble) / (1.0 + math.exp(self.rationality * abs(oracle.margin)))
        return self.noise


def _garbled(expert: str, rng: np.random.Generator) -> str:
    form = _GARBLE_FORMS[int(rng.integers(len(_GARBLE_FORMS)))]
    return form.format(reversed=expert[::-1])


def _expert(expert: str, choices: list[str] | None) -> str:
    if choices is None or expert in choices:
        return expert
    stripped = {c.strip(): c for c in choices}
    if expert.strip() in stripped:
        return stripped[expert.strip()]
    raise ValueError(f"the oracle's expert answer {expert!r} is not one of the choices")


def _alternative(
    expert: str,
    alternatives: tuple[str, ...],
    choices: list[str] | None,
    rng: np.random.Generator,
) -> str:
    pool = list(alternatives)
    if choices is not None:
        allowed = set(choices)
        pool = [a for a in pool if a in allowed] or [c for c in choices if c != expert]
    if not pool:  # nothing else to say: the expert answer is the only legal one
        return _expert(expert, choices)
    return pool[int(rng.integers(len(pool)))]
