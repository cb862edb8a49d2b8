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


def algorithm_label(planner: str, llm: str) -> str:
    """`planner` (no LLM) or `planner @ llm`, marked when the LLM is simulated."""
    if llm in ("", "none"):
        return planner
    return f"{planner} @ {llm}" + (f" {SIM_MARK}" if is_simulated(llm) else "")
