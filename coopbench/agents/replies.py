"""The plan grammar shared by every planner and env (RoCo's, which ReAd keeps).

A reply ends with a keyword line, `EXECUTE` (a joint plan follows) or `PROCEED` (the speaker's
own action follows, or the dialog goes on), then one `NAME <agent> ACTION <action>` line per
agent. Parsing is tolerant about case, markdown and trailing `PATH [...]`, strict about
content: exactly one line per required agent, every action legal now. Errors are
`ParseError`s whose messages are written for the LLM to read on the re-prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from coopbench.core.types import Action, ParseError
from coopbench.envs.base import LanguageEnv

EXECUTE = "EXECUTE"
PROCEED = "PROCEED"
_LINE = re.compile(
    r"NAME\s*[:=]?\s*(?P<agent>[A-Za-z_][\w-]*)\s*[,:;]?\s+ACTION\s*[:=]?\s*(?P<act>.+)",
    re.IGNORECASE,
)
_PATH = re.compile(r"\s+PATH\b.*$", re.IGNORECASE)


def format_joint(
    joint: Mapping[str, Action | str], keyword: str = EXECUTE, preface: str = ""
) -> str:
    """`[preface]\\nEXECUTE\\nNAME Alice ACTION ...` in the given agent order."""
    lines = [preface] if preface else []
    lines.append(keyword)
    for agent, act in joint.items():
        text = act.text if isinstance(act, Action) else act
        lines.append(f"NAME {agent} ACTION {text}")
    return "\n".join(lines)


def format_own(agent: str, action: Action | str, keyword: str = PROCEED, preface: str = "") -> str:
    """A sequential speaker's reply: `PROCEED` and one line for itself."""
    return format_joint({agent: action}, keyword, preface)


def has_keyword(text: str, keyword: str) -> bool:
    return re.search(rf"\b{keyword}\b", text) is not None


def _plan_lines(text: str, keyword: str) -> list[tuple[str, str]]:
    """(agent, action text) pairs on NAME/ACTION lines after the last `keyword`."""
    found = [m.end() for m in re.finditer(rf"\b{keyword}\b", text)]
    if not found:
        raise ParseError(
            f"The response has no '{keyword}' line. End the response with '{keyword}' followed by "
            "'NAME <agent> ACTION <action>' lines."
        )
    pairs = []
    for raw in text[found[-1] :].splitlines():
        line = raw.strip().strip("*`>-• ").strip()
        match = _LINE.search(line)
        if match:
            act = _PATH.sub("", match.group("act")).strip().strip("*`")
            pairs.append((match.group("agent"), act))
    return pairs


def _canonical_agent(env: LanguageEnv, name: str) -> str:
    for agent in env.possible_agents:
        if agent.lower() == name.lower():
            return agent
    raise ParseError(
        f"There is no robot named {name!r}; the robots are {', '.join(env.possible_agents)}."
    )


def parse_joint(
    env: LanguageEnv, text: str, agents: Iterable[str] | None = None, keyword: str = EXECUTE
) -> dict[str, Action]:
    """One legal action per agent in `agents` (default: all), from the plan after `keyword`."""
    wanted = list(agents if agents is not None else env.agents)
    pairs = _plan_lines(text, keyword)
    if not pairs:
        raise ParseError(
            f"No 'NAME <agent> ACTION <action>' lines after '{keyword}'. Write one line per robot."
        )
    joint: dict[str, Action] = {}
    for name, act in pairs:
        agent = _canonical_agent(env, name)
        if agent not in wanted:
            raise ParseError(
                f"{agent} should not be in this plan; give lines for {', '.join(wanted)} only.",
                agent=agent,
            )
        if agent in joint:
            raise ParseError(
                f"{agent} has more than one ACTION line; give exactly one per robot.", agent=agent
            )
        joint[agent] = env.parse(agent, act)
    missing = [a for a in wanted if a not in joint]
    if missing:
        raise ParseError(
            f"The plan has no ACTION line for {', '.join(missing)}; "
            "give exactly one line per robot."
        )
    return {a: joint[a] for a in wanted}


def parse_own(env: LanguageEnv, agent: str, text: str, keyword: str = PROCEED) -> Action:
    """The speaker's own action from `keyword` + `NAME <agent> ACTION <act>`.

    Lines for other agents are ignored (a speaker may restate teammates' actions).
    """
    pairs = _plan_lines(text, keyword)
    own = [act for name, act in pairs if name.lower() == agent.lower()]
    if not own:
        raise ParseError(
            f"After '{keyword}' write exactly one line 'NAME {agent} ACTION <action>' "
            "for yourself.",
            agent=agent,
        )
    if len(own) > 1:
        raise ParseError(f"{agent} has more than one ACTION line; give exactly one.", agent=agent)
    return env.parse(agent, own[0])
