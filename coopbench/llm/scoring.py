"""The arithmetic of scoring candidates, apart from any transport so it is testable alone.

- `render_prefix`: chat messages as the raw text a completions endpoint continues, in a
  named template (`SCORE_TEMPLATES`), and `end_marker`, the text that closes the reply's
  turn. A candidate is scored as `prefix + candidate + end marker`, so "the reply ends here"
  is part of its probability and a candidate that is a prefix of another is not favoured.
- `span_logprob`: a candidate's log-probability from echoed per-token log-probabilities.
- `sampled_logprobs`: the stand-in for endpoints without log-probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from coopbench.llm.base import Message

SCORE_TEMPLATES = ("chatml", "plain")
_END_MARKERS = {"chatml": "<|im_end|>", "plain": "\n"}


def render_prefix(messages: Sequence[Message], template: str) -> str:
    """The messages, then the opening of the assistant's turn, as one string."""
    if template == "chatml":  # Qwen, many fine-tunes; what vLLM and llama.cpp serve most
        turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return turns + "<|im_start|>assistant\n"
    if template == "plain":
        turns = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
        return turns + "Assistant: "
    raise ValueError(f"unknown score template {template!r}; one of {SCORE_TEMPLATES}")


def end_marker(template: str) -> str:
    return _END_MARKERS[template]


def span_logprob(token_logprobs: Sequence[Any], text_offset: Sequence[Any], start: int,
                 end: int) -> float:
    """Sum of the log-probabilities of the tokens whose first character lies in [start, end).

    A token that straddles `start` belongs to the prompt, as the tokenizer drew the line.
    Raises `ValueError` for anything that would make the sum meaningless (lengths that
    disagree, a missing or non-numeric value in the span, no token in the span).
    """
    if len(token_logprobs) != len(text_offset):
        raise ValueError(f"{len(token_logprobs)} log-probabilities for {len(text_offset)} offsets")
    total, tokens = 0.0, 0
    for logprob, offset in zip(token_logprobs, text_offset, strict=True):
        if not _is_number(offset):
            raise ValueError(f"non-numeric text offset {str(offset)[:20]!r}")
        if not start <= offset < end:
            continue
        if not _is_number(logprob):
            raise ValueError(f"non-numeric token log-probability {str(logprob)[:20]!r}")
        total += float(logprob)
        tokens += 1
    if tokens == 0:
        raise ValueError("no token of the candidate was echoed")
    return total


def sampled_logprobs(replies: Sequence[str], candidates: Sequence[str]) -> tuple[list[float], int]:
    """log((count + 0.5) / (k + 0.5 n)) per candidate from k sampled replies; and how many
    replies matched no candidate (they count for nothing).

    The add-½ smoothing keeps unseen candidates finite and ordered below seen ones; the
    values are coarse (steps of 1/k), a ranking more than a probability.
    """
    index: dict[str, int] = {}
    for i, candidate in enumerate(candidates):
        index.setdefault(candidate.strip(), i)  # duplicates: the first one gets the votes
    counts = [0] * len(candidates)
    unmatched = 0
    for reply in replies:
        i = index.get(reply.strip())
        if i is None:
            unmatched += 1
        else:
            counts[i] += 1
    total = len(replies) + 0.5 * len(candidates)
    return [math.log((c + 0.5) / total) for c in counts], unmatched


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
