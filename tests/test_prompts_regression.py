"""Prompt regression: the prompts planners send for recorded states, byte for byte.

A change to a prompt shows up here as a diff to review; when it is meant, rewrite the
recorded files with `COOPBENCH_UPDATE_GOLDEN=1 pytest tests/test_prompts_regression.py`.
Besides the bytes, the checks below pin two bugs that must not return: an invitation to
"think step by step" while a grammar allows nothing but the plan, and an output example
made of real action texts (small models copy it whatever the state).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coopbench import envs, planners
from coopbench.agents import prompts as P

GOLDEN = Path(__file__).parent / "golden" / "prompts"
STATES = [  # (env id, kwargs, reset seed): scenes fixed by jitter=0
    ("roco/sort-level1-v0", {"jitter": 0.0}, 0),
    ("roco/sweep-y1g1-v0", {"jitter": 0.0}, 0),
    ("overcooked/cramped_room-read-skills-v0", {}, 0),
]


def _prompts(env_id: str, kwargs: dict, seed: int) -> dict[str, str]:
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    agents = list(env.agents)
    central = planners.make("central-v0")
    first = agents[0]
    own = P.assemble(
        [P.section("Task", env.task_prompt()), P.own_instruction(env, first, free_text=False),
         P.state_section(env, first)],
        P.user_line(first),
    )
    texts = {
        "central-grammar": central.prompt(env, agents, [], free_text=False),
        "central-free": central.prompt(env, agents, [], free_text=True),
        "own-grammar": own,
    }
    return {k: "\n".join(f"<{m['role']}>\n{m['content']}" for m in v) for k, v in texts.items()}


@pytest.mark.parametrize(("env_id", "kwargs", "seed"), STATES, ids=[s[0] for s in STATES])
def test_prompts_match_the_recorded_ones(env_id, kwargs, seed):
    for kind, text in _prompts(env_id, kwargs, seed).items():
        path = GOLDEN / f"{env_id.replace('/', '__')}--{kind}.txt"
        if os.environ.get("COOPBENCH_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no recorded prompt {path.name}: run with COOPBENCH_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{path.name} changed"


@pytest.mark.parametrize(("env_id", "kwargs", "seed"), STATES, ids=[s[0] for s in STATES])
def test_no_thinking_under_a_grammar_and_no_real_actions_as_examples(env_id, kwargs, seed):
    env = envs.make(env_id, **kwargs)
    env.reset(seed=seed)
    prompts = _prompts(env_id, kwargs, seed)
    assert "Think step by step" not in prompts["central-grammar"]
    assert "Think step by step" not in prompts["own-grammar"]
    assert "Think step by step" in prompts["central-free"]
    vocabulary = {t for a in env.agents for t in env.vocabulary(a)}
    for kind, text in prompts.items():  # task rules and output format alike
        shown = [line.split(" ACTION ", 1)[1].rstrip(".") for line in text.splitlines()
                 if line.startswith("NAME ") and " ACTION " in line]
        assert shown, f"{kind}: no output format shown"
        assert not vocabulary & set(shown), f"{kind}: an example shows a real action"
