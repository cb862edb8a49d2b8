"""Prompt assembly: sections in a fixed order, stable text first and the changing state last.

Every call is one system message (task, rules, action grammar, output instruction, persona,
then history, state, feedback and chat) and a short user line, as in RoCo and ReAd. Keeping
the first sections byte-identical across calls lets llama.cpp and API providers reuse the
cached prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from coopbench.agents.replies import EXECUTE, PROCEED
from coopbench.envs.base import LanguageEnv
from coopbench.llm.base import Message


@dataclass
class Round:
    """One executed interaction step, as later prompts show it."""

    step: int
    replies: list[str] = field(default_factory=list)  # speaker-prefixed replies (+ score lines)
    executed: dict[str, str] = field(default_factory=dict)
    feedback: list[str] = field(default_factory=list)  # execution feedback from the env


def section(title: str, body: str) -> str:
    return f"[{title}]\n{body.strip()}"


def assemble(sections: Sequence[str | None], user: str) -> list[Message]:
    """System message from the non-empty sections, then the user line."""
    system = "\n\n".join(s for s in sections if s)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


FREE_TEXT_LEAD = "Think step by step if you need to, then write"
PLAN_ONLY_LEAD = "Write only the plan:"  # a grammar (choices) or scoring leaves no room to think


def _placeholder(agent: str) -> str:
    """An example action that shows the format without suggesting a move (a real action
    text here is copied by small models whatever the state)."""
    return f"<one of {agent}'s available actions>"


def joint_instruction(
    env: LanguageEnv, agents: Sequence[str], think: str = "", free_text: bool = True
) -> str:
    """Output format for a whole joint plan; `think` asks for reasoning before the plan.

    `free_text=False` (replies constrained to the plan, or plans scored) drops every
    invitation to write anything but the plan.
    """
    examples = "\n".join(f"NAME {a} ACTION {_placeholder(a)}" for a in agents)
    lead = (think or FREE_TEXT_LEAD) if free_text else PLAN_ONLY_LEAD
    return section(
        "Action Output Instruction",
        f"{lead} a line '{EXECUTE}' followed by exactly one line per robot, "
        f"'NAME <robot> ACTION <action>', for {', '.join(agents)}. Use only actions that are "
        f"available now. Format:\n{EXECUTE}\n{examples}",
    )


def own_instruction(env: LanguageEnv, agent: str, free_text: bool = True) -> str:
    """Output format for one agent's own action (ReAd-S, sequential speakers)."""
    lead = FREE_TEXT_LEAD if free_text else PLAN_ONLY_LEAD
    return section(
        "Action Output Instruction",
        f"{lead} a line '{PROCEED}' followed by exactly one line 'NAME {agent} ACTION "
        f"<action>' for yourself only. Use only actions that are available to you now. "
        f"Format:\n{PROCEED}\nNAME {agent} ACTION {_placeholder(agent)}",
    )


def history_section(rounds: Sequence[Round], title: str = "Previous Round History") -> str | None:
    if not rounds:
        return None
    parts = []
    for r in rounds:
        lines = [f"-- step {r.step} --", *r.replies]
        lines += [f"[Executed Action] {a}: {t}" for a, t in r.executed.items()]
        lines += [f"[Execution Feedback] {f}" for f in r.feedback]
        parts.append("\n".join(lines))
    return section(title, "\n".join(parts))


BLANK_STATE = "(not shown)"


def state_section(
    env: LanguageEnv, agent: str | None = None, *, reverse: bool = False, blank: bool = False
) -> str:
    """The current state (global, or `agent`'s partial view) and the actions legal now.

    `reverse` lists each agent's options last to first and `blank` hides the state: the
    variants that calibrated scoring (planners/scoring.py) compares.
    """
    who = env.agents if agent is None else [agent]
    lists = {a: env.action_options(a) for a in who}
    options = "\n".join(
        f"{a}: {', '.join(reversed(o) if reverse else o)}" for a, o in lists.items()
    )
    title = "Current State" if agent is None else f"What {agent} sees now"
    state = BLANK_STATE if blank else env.describe(agent)
    return "\n\n".join([section(title, state), section("Available Actions Now", options)])


def feedback_section(messages: Sequence[str]) -> str | None:
    if not messages:
        return None
    return "\n\n".join(section("Environment Feedback", m) for m in messages)


def chat_section(chat: Sequence[str], title: str = "Current Chat") -> str | None:
    return section(title, "\n".join(chat)) if chat else None


def improve_section(speaker: str, reply: str, score: float, threshold: float) -> str:
    """ReAd's improve block: the rejected reply, its score and the threshold to beat."""
    return section(
        "Improve Feedback",
        f"{speaker}'s previous response was:\n{reply.strip()}\n"
        f"Its advantage score {score:.3f} is too low to execute; the answer may misread the "
        f"environment state. Change the action so that the score exceeds {threshold:.3f}.",
    )


def score_line(speaker: str, score: float, accepted: bool, what: str = "action") -> str:
    verdict = "score is high enough" if accepted else "score is low, the plan must change"
    return f"[Evaluation Score] advantage score of {speaker}'s {what} is {score:.3f}; {verdict}."


def plan_lines(joint: Mapping[str, str]) -> str:
    return "\n".join(f"NAME {a} ACTION {t}" for a, t in joint.items())


def user_line(agent: str | None) -> str:
    return f"You are {agent}, your response is:" if agent else "Your response is:"
