"""`coopbench.testing.check_planner`: every built-in planner passes; each of five broken
planners fails with one line naming the rule it breaks."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench import planners
from coopbench.core.types import CriticRequest, PlanResult
from coopbench.critics.critic import Critic
from coopbench.llm.base import Oracle
from coopbench.planners.base import Planner
from coopbench.testing import PLANNER_RULES, PlannerCheckFailed, check_planner

ENV = "meetgrid/meet-v0"
NO_CRITIC = ["random-v0", "expert-v0", "central-v0", "react-v0", "mindagent-v0",
             "reflexion-v0", "roco-v0", "llm-score-v0"]
WITH_CRITIC = ["read-j-v0", "read-s-v0", "read-j-scored-v0", "read-s-scored-v0",
               "critic-greedy-v0"]


@pytest.mark.parametrize("planner_id", NO_CRITIC)
def test_built_in_planners_pass(meetgrid, planner_id):
    check_planner(planner_id, ENV)


@pytest.mark.parametrize("planner_id", WITH_CRITIC)
def test_built_in_critic_planners_pass_with_their_critic(meetgrid, critic_path, planner_id):
    from coopbench import envs

    env = envs.make(ENV)
    env.reset(seed=0)
    check_planner(planner_id, ENV, critic=Critic.load(critic_path, env))


def test_every_registered_planner_is_checked(meetgrid):
    built_in = {i for i in planners.registry.ids() if not i.startswith("meetgrid/")}
    assert built_in == {planners.registry.spec(p).id for p in NO_CRITIC + WITH_CRITIC}


class Wandering(Planner):
    """Breaks seed-determinism: draws from a generator it seeded itself, once per process."""

    _shared = np.random.default_rng()

    def act(self, env):
        joint = {a: env.parse(a, opts[int(self._shared.integers(len(opts)))])
                 for a in env.agents for opts in [env.action_options(a)]}
        return PlanResult(joint)


class Peeking(Planner):
    """Breaks no-env-mutation: tries its move on the env itself and leaves it done."""

    def act(self, env):
        joint = env.expert_joint()
        env.step(dict(joint))
        return PlanResult(joint)


def ask(llm, env):
    agent = env.agents[0]
    oracle = Oracle(expert=env.expert_joint()[agent].text, alternatives=[])
    return llm.complete([{"role": "user", "content": env.describe()}], max_tokens=8,
                        oracle=oracle)


class Chatty(Planner):
    """Breaks query-cap: asks the LLM and reports no query."""

    def act(self, env):
        ask(self.llm, env)
        return PlanResult(env.expert_joint())


class Stubborn(Planner):
    """Breaks wait-on-unparsable: on a reply it cannot parse it moves anyway."""

    def act(self, env):
        reply = ask(self.llm, env)
        joint = {}
        for agent in env.agents:
            try:
                joint[agent] = env.parse(agent, reply.text)
            except Exception:
                wait = env.wait_action(agent).text
                move = next(o for o in env.action_options(agent) if o != wait)
                joint[agent] = env.parse(agent, move)
        return PlanResult(joint, llm_queries=1)


class Needy(Planner):
    """Breaks critic-request: asks for a critic, then runs without one."""

    def critic_request(self):
        return CriticRequest()

    def act(self, env):
        return PlanResult(env.expert_joint())


@pytest.mark.parametrize(("broken", "rule"), [
    (Wandering, "seed-determinism"), (Peeking, "no-env-mutation"), (Chatty, "query-cap"),
    (Stubborn, "wait-on-unparsable"), (Needy, "critic-request"),
])
def test_a_broken_planner_fails_with_one_line_naming_its_rule(meetgrid, broken, rule):
    with pytest.raises(PlannerCheckFailed) as failed:
        check_planner(broken, ENV)
    message = str(failed.value)
    assert len(message.splitlines()) == 1, message
    assert f"rule {rule}:" in message and broken.__name__ in message and ENV in message
    assert rule in PLANNER_RULES
