"""How results are named in reports and live displays (a light module: no numpy or scipy)."""

from __future__ import annotations

SIM_MARK = "(sim)"
IDENTICAL_MARK = "≡"  # marks a cell whose episodes are all one and the same episode
SIM_NOTE = (
    "(sim) = simulated LLM (sim:...): answers come from the env's scripted expert with injected "
    "errors, not from a language model."
)


def is_simulated(llm: str) -> bool:
    return llm.startswith("sim:")


def model_label(llm: str, decoding: str) -> str:
    """An LLM as reports name it: the spec, marked with how the planner decoded
    (`[constrained]`, `[free]`), so the two are never pooled in one row. Records from before
    the decoding field carry none and keep their plain spec."""
    return f"{llm} [{decoding}]" if decoding and llm not in ("", "none") else llm


def model_of(episode: object) -> str:
    return model_label(getattr(episode, "llm", ""), getattr(episode, "decoding", ""))


def algorithm_label(planner: str, llm: str) -> str:
    """`planner` (no LLM) or `planner @ llm`, marked when the LLM is simulated."""
    if llm in ("", "none"):
        return planner
    return f"{planner} @ {llm}" + (f" {SIM_MARK}" if is_simulated(llm) else "")
