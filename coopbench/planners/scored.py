"""ReAd's target policy computed exactly over the actions that can be listed.

ReAd's KL-regularised improvement of the LLM policy μ is π*(a|s) ∝ μ(a|s)·exp(A(s,a)/β)
(read-method.md §1); the threshold loop of `read.py` approximates it for models that give no
log-probabilities. When the legal actions can be listed and the model can score them, the
planners here take the argmax of log μ(a) + A(s,a)/β directly:

- ReAd-J (scored): over legal joint actions, A = Q(s, a) − V(s).
- ReAd-S (scored): agent by agent, A^i = Q(s, a^{1:i}) − Q(s, a^{1:i−1}), each agent's μ
  conditioned on its predecessors' choices (shown in the prompt).
- critic-greedy: the critic's argmax alone (no LLM; β → 0).
- llm-score: the calibrated log μ argmax alone (no critic; β → ∞).

β is in units of the critic's return std, like ReAd's thresholds. log μ is calibrated
(`planners/scoring.py`). Plans are tried best first until one passes `verify()`; the
critic is not a feasibility checker. SayCan (Ahn et al. 2022) multiplies an LLM's
probability by a value estimate in the same way, without the KL view or the 1/β.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from coopbench.agents import prompts as P
from coopbench.agents.replies import format_joint, format_own
from coopbench.core.errors import BadScores, ConfigError
from coopbench.core.types import Action, CriticRequest
from coopbench.envs.base import LanguageEnv
from coopbench.planners.base import AdvantageCritic
from coopbench.planners.llm_base import LLMPlanner, QueryCapReached, StepContext
from coopbench.planners.read import ReadConfig, ReadPlanner
from coopbench.planners.scoring import CALIBRATIONS, calibrated, legal_joints, top_k


@dataclass
class ScoredConfig(ReadConfig):
    beta: float = 0.01  # temperature of exp(A/β), in critic return-std units
    calibration: str = "pmi+reverse"  # how log μ is calibrated (planners/scoring.py)
    max_candidates: int = 8  # joint plans the LLM scores: the critic's top k (ReAd-J)
    max_enumerate: int = 4096  # legal joint plans the critic ranks (a random subset past it)
    max_queries_per_step: int = 20

    def validate(self, planner: str) -> None:
        super().validate(planner)
        if not self.beta > 0:
            raise ConfigError(f"{planner}: beta must be > 0")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"{planner}: calibration must be one of {', '.join(CALIBRATIONS)}")
        if self.max_candidates < 1 or self.max_enumerate < 1:
            raise ConfigError(f"{planner}: max_candidates and max_enumerate must be >= 1")


class ScoredPlanner(ReadPlanner):
    """Shared by the scored planners: the LLM term, the critic term and verification."""

    Config = ScoredConfig
    uses_llm = True  # False: critic-greedy (no LLM term, no LLM needed)
    uses_critic = True  # False: llm-score (no critic term, none resolved)

    def critic_request(self) -> CriticRequest | None:
        return super().critic_request() if self.uses_critic else None

    def reset(
        self, env: LanguageEnv, llm: Any, rng: Any, critic: AdvantageCritic | None = None
    ) -> None:
        if self.uses_critic:
            super().reset(env, llm if self.uses_llm else None, rng, critic)
        else:
            LLMPlanner.reset(self, env, llm, rng)
            self.scale = 1.0

    def llm_term(
        self, ctx: StepContext, env: LanguageEnv, candidates: list[str], prompt_for, agent=None,
        oracle=None,
    ) -> np.ndarray:
        """Calibrated log μ per candidate, or zeros (no LLM, cap reached, garbage scores)."""
        if not self.uses_llm:
            return np.zeros(len(candidates))

        def one_pass(messages: list, reverse: bool, blank: bool) -> np.ndarray:
            purpose = "score" + ("-reversed" if reverse else "") + ("-blank" if blank else "")
            # the sim's answer key describes the state: a prompt that hides it gets none
            return self.score(ctx, env, messages, candidates, oracle=None if blank else oracle,
                              agent=agent, purpose=purpose)

        try:
            return calibrated(self.cfg.calibration, prompt_for, one_pass)
        except QueryCapReached:
            ctx.note("cap", message=f"query cap {ctx.cap} reached; the critic decides alone")
        except BadScores as exc:
            ctx.parse_failures += 1  # a garbage answer: counted like an unparseable reply
            ctx.note("feedback", kind="score", agent=agent, message=str(exc))
        return np.zeros(len(candidates))

    def first_feasible(
        self, ctx: StepContext, env: LanguageEnv, ranked: list[dict[str, Action]]
    ) -> dict[str, Action] | None:
        """The best-ranked plan that passes `verify()`, trying at most `max_replans`."""
        for joint in ranked[: self.cfg.max_replans]:
            problems = env.verify(joint)
            if not problems:
                return joint
            ctx.verify_failed(problems)
        return None


class ScoredReadJPlanner(ScoredPlanner):
    """ReAd-J, scored: argmax over legal joint plans of log μ(a) + (Q(s,a) − V(s))/β."""

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        agents = list(env.agents)
        joints = legal_joints(env, agents, self.enumerate_limit(), self.rng)
        adv = self.advantages(env, joints)
        keep = top_k(adv, self.shortlist_size(len(joints)))
        shortlist, adv = [joints[i] for i in keep], adv[keep]
        texts = [format_joint(j) for j in shortlist]

        def prompt_for(reverse: bool, blank: bool) -> list:
            return P.assemble(
                [
                    P.section("Task", env.task_prompt()),
                    P.joint_instruction(env, agents, free_text=False),
                    None if blank else P.history_section(self.visible_rounds()),
                    P.state_section(env, reverse=reverse, blank=blank),
                ],
                P.user_line(None),
            )

        oracle = self.oracle_joint(env, agents)
        logmu = self.llm_term(ctx, env, texts, prompt_for, oracle=oracle)
        total = logmu + adv / (self.cfg.beta * self.scale)
        order = top_k(total, len(total))
        ctx.note("scored", candidates=[
            {"plan": texts[i], "log_mu": round(float(logmu[i]), 4),
             "advantage": round(float(adv[i]), 4), "total": round(float(total[i]), 4)}
            for i in order
        ])
        return self.first_feasible(ctx, env, [shortlist[i] for i in order])

    def enumerate_limit(self) -> int:
        return self.cfg.max_enumerate

    def shortlist_size(self, n: int) -> int:
        """How many of the critic's best plans the LLM scores (the critic alone: all)."""
        return min(n, self.cfg.max_candidates) if self.uses_llm else n

    def advantages(self, env: LanguageEnv, joints: list[dict[str, Action]]) -> np.ndarray:
        if self.critic is None:
            return np.zeros(len(joints))
        feats = env.features()
        return self.critic.q_many(feats, joints) - self.critic.value(feats)


class ScoredReadSPlanner(ScoredPlanner):
    """ReAd-S, scored: each agent in turn takes argmax log μ^i(a) + A^i(s, a^{1:i})/β."""

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        order = self.order(env)
        feats = env.features()
        plan: dict[str, Action] = {}
        ranked_per_agent: list[list[Action]] = []
        chat: list[str] = []
        prev_q = self.critic.value(feats)
        for agent in order:
            options = [env.parse(agent, t) for t in env.action_options(agent)]
            qs = self.critic.q_many(feats, [{**plan, agent: o} for o in options])
            texts = [format_own(agent, o) for o in options]

            def prompt_for(reverse: bool, blank: bool, agent: str = agent) -> list:
                return P.assemble(
                    [
                        P.section("Task", env.task_prompt()),
                        P.own_instruction(env, agent, free_text=False),
                        None if blank else P.history_section(self.visible_rounds()),
                        P.state_section(env, agent, reverse=reverse, blank=blank),
                        None if blank else P.chat_section(chat),
                    ],
                    P.user_line(agent),
                )

            oracle = self.oracle_own(env, agent)
            logmu = self.llm_term(ctx, env, texts, prompt_for, agent=agent, oracle=oracle)
            total = logmu + (qs - prev_q) / (self.cfg.beta * self.scale)
            ranking = top_k(total, len(total))
            best = int(ranking[0])
            plan[agent] = options[best]
            prev_q = float(qs[best])
            ranked_per_agent.append([options[int(i)] for i in ranking])
            chat.append(f"[{agent}]: {texts[best]}")
            ctx.note("scored", agent=agent, candidates=[
                {"action": options[int(i)].text, "log_mu": round(float(logmu[i]), 4),
                 "advantage": round(float(qs[i] - qs[best] + 0.0), 4)} for i in ranking
            ])
        return self.first_feasible(ctx, env, _fallbacks(order, ranked_per_agent))


def _fallbacks(order: list[str], ranked: list[list[Action]]) -> list[dict[str, Action]]:
    """The chosen plan, then the plans that swap one agent's choice for its next best (last
    agent first): what to try when `verify()` refuses the chosen one, without new queries."""
    chosen = {a: r[0] for a, r in zip(order, ranked, strict=True)}
    plans = [chosen]
    for depth in (1, 2):
        for agent, options in reversed(list(zip(order, ranked, strict=True))):
            if len(options) > depth:
                plans.append({**chosen, agent: options[depth]})
    return plans


class CriticGreedyPlanner(ScoredReadJPlanner):
    """The critic's argmax over legal joint plans; no LLM (ReAd's β → 0 limit)."""

    uses_llm = False


@dataclass
class LLMScoreConfig(ScoredConfig):
    max_candidates: int = 64  # legal joint plans scored (a random subset past it)


class LLMScorePlanner(ScoredReadJPlanner):
    """The calibrated log μ argmax over legal joint plans; no critic (β → ∞).

    Without a critic to shortlist, it scores `max_candidates` legal plans drawn at random
    (every plan when there are no more than that).
    """

    Config = LLMScoreConfig
    uses_critic = False

    def enumerate_limit(self) -> int:
        return self.cfg.max_candidates

    def shortlist_size(self, n: int) -> int:
        return n
