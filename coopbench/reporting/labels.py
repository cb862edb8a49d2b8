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


CRITIC_MARK = " <critic "  # opens the critic data budget in a model label


def model_label(llm: str, decoding: str, critic_data: str = "") -> str:
    """An LLM as reports name it: the spec, marked with how the planner decoded
    (`[constrained]`, `[free]`) and with the critic data budget of its critic
    (`<critic expert+reset,n=500>`), so none of these are ever pooled in one row. Records
    from before those fields carry none and keep their plain spec."""
    how = f"{llm} [{decoding}]" if decoding and llm not in ("", "none") else llm
    return f"{how}{CRITIC_MARK}{critic_data}>" if critic_data else how


def critic_data_of(cell: str) -> str:
    """The critic data budget a cell key names ("" when none; runner/single.py writes it)."""
    _, found, rest = cell.partition("|critic_data=")
    return rest.rpartition("|seed=")[0] if found else ""


def model_of(episode: object) -> str:
    return model_label(getattr(episode, "llm", ""), getattr(episode, "decoding", ""),
                       critic_data_of(getattr(episode, "cell", "")))


def algorithm_label(planner: str, llm: str) -> str:
    """`planner` (no LLM) or `planner @ llm`, marked when the LLM is simulated; a critic data
    budget stays on the label either way."""
    model, found, data = llm.partition(CRITIC_MARK)
    budget = f"{CRITIC_MARK}{data}" if found else ""
    if model in ("", "none"):
        return planner + budget
    return f"{planner} @ {llm}" + (f" {SIM_MARK}" if is_simulated(llm) else "")
