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


def _examples(env: LanguageEnv, agents: Sequence[str]) -> list[str]:
    """Example action texts from the fixed vocabulary (stable across calls)."""
    out = []
    for i, agent in enumerate(agents):
        vocab = env.vocabulary(agent)
        out.append(vocab[min(i, len(vocab) - 1)])
    return out


def joint_instruction(env: LanguageEnv, agents: Sequence[str], think: str = "") -> str:
    """Output format for a whole joint plan; `think` asks for reasoning before the plan."""
    examples = "\n".join(
        f"NAME {a} ACTION {t}" for a, t in zip(agents, _examples(env, agents), strict=True)
    )
    lead = think or "Think step by step if you need to, then write"
    return section(
        "Action Output Instruction",
        f"{lead} a line '{EXECUTE}' followed by exactly one line per robot, "
        f"'NAME <robot> ACTION <action>', for {', '.join(agents)}. Use only actions that are "
        f"available now. Example:\n{EXECUTE}\n{examples}",
    )


def own_instruction(env: LanguageEnv, agent: str) -> str:
    """Output format for one agent's own action (ReAd-S, sequential speakers)."""
    example = env.vocabulary(agent)[0]
    return section(
        "Action Output Instruction",
        f"Think step by step if you need to, then write a line '{PROCEED}' followed by exactly "
        f"one line 'NAME {agent} ACTION <action>' for yourself only. Use only actions that are "
        f"available to you now. Example:\n{PROCEED}\nNAME {agent} ACTION {example}",
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


def state_section(env: LanguageEnv, agent: str | None = None) -> str:
    """The current state (global, or `agent`'s partial view) and the actions legal now."""
    who = env.agents if agent is None else [agent]
    options = "\n".join(f"{a}: {', '.join(env.action_options(a))}" for a in who)
    title = "Current State" if agent is None else f"What {agent} sees now"
    return "\n\n".join(
        [section(title, env.describe(agent)), section("Available Actions Now", options)]
    )


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
