"""Scoring every legal action: enumeration, calibrated LLM log-probabilities.

Small models follow list order rather than the state (shared/reference/local-llm.md), so a
raw log μ(a | prompt) mostly measures where `a` sits in the list. Two calibrations remove
that: PMI subtracts log μ(a | the same prompt with the state blanked), which cancels what
the model would say whatever the state (the list order, short or frequent actions), and the
reverse average scores the prompt twice, options listed forwards and backwards, so list
position drops out. The blanked prompt also drops the history, so it depends only on the
task and the options listed; the embedded backend remembers scored passes by their exact
tokens and answers it from memory whenever those repeat (the response cache would not: its
key holds the step's seed). Each scoring pass is one LLM query round (a hit still counts).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import numpy as np

from coopbench.core.types import Action
from coopbench.envs.base import LanguageEnv

CALIBRATIONS = ("pmi+reverse", "pmi", "reverse", "none")

# variant -> prompt messages; a variant is (options reversed, state blanked)
PromptFor = Callable[[bool, bool], list]
ScorePass = Callable[[list, bool, bool], np.ndarray]


def variants(calibration: str) -> list[tuple[bool, bool, float]]:
    """(reverse, blank, sign) per scoring pass; the calibrated score is the signed mean."""
    orders = [False, True] if "reverse" in calibration else [False]
    out = []
    for reverse in orders:
        out.append((reverse, False, 1.0))
        if "pmi" in calibration:
            out.append((reverse, True, -1.0))
    return out


def calibrated(calibration: str, prompt_for: PromptFor, score_pass: ScorePass) -> np.ndarray:
    """Σ over the calibration's passes of ± log μ, averaged over the option orders."""
    plan = variants(calibration)
    total: np.ndarray | None = None
    for reverse, blank, sign in plan:
        lp = sign * score_pass(prompt_for(reverse, blank), reverse, blank)
        total = lp if total is None else total + lp
    assert total is not None
    return total / (2 if "reverse" in calibration else 1)


def legal_joints(
    env: LanguageEnv, agents: list[str], limit: int, rng: np.random.Generator
) -> list[dict[str, Action]]:
    """Every legal joint action (agents in `agents` order), or `limit` of them drawn at random.

    A draw keeps every agent's WAIT-together plan first, so a consumed step stays possible.
    """
    options = [[env.parse(a, t) for t in env.action_options(a)] for a in agents]
    total = int(np.prod([len(o) for o in options]))
    if total <= limit:
        return [dict(zip(agents, combo, strict=True)) for combo in product(*options)]
    wait = {a: env.wait_action(a) for a in agents}
    picked = {tuple(x.index for x in wait.values())}
    joints = [wait]
    for _ in range(limit * 20):  # bounded rejection sampling
        if len(joints) >= limit:
            break
        combo = tuple(o[int(rng.integers(len(o)))] for o in options)
        key = tuple(x.index for x in combo)
        if key not in picked:
            picked.add(key)
            joints.append(dict(zip(agents, combo, strict=True)))
    return joints


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, best first (stable for ties: earlier first)."""
    order = np.argsort(-values, kind="stable")
    return order[: max(1, k)]
