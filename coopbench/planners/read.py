"""ReAd-J and ReAd-S: an LLM proposes, a learned advantage critic accepts or asks again.

ReAd-J (read-method.md §3.2): one call proposes the joint plan; score S_J = Q(s, a) − b(s)
with b(s) = V(s) (the all-masked critic output; `baseline="value"`, by the identity
Q(s, all-WAIT)/γ = V(s)) or Q(s, all-WAIT)/γ (`baseline="wait"`). Re-queries rotate the agent
persona. ReAd-S (§3.1): agents in a fixed order each propose their own action from their
partial view; agent i's score is Q(s, a¹..aⁱ) − Q(s, a¹..aⁱ⁻¹).

A score at or under the threshold sends the LLM ReAd's improve block (reply, score,
threshold) and the threshold relaxes. With `acceptance="relative"` (the default) the
threshold is the best legal alternative's advantage minus `accept_margin`, and the margin
doubles after every rejection: a critic biased upward raises every score, the best
alternative's with them, so it can no longer wave through whatever it likes. With
`acceptance="absolute"` the threshold is a fixed number (`threshold_schedule`: "logs"
doubles a negative ε₀ after every rejection, reset per agent and re-plan; "paper" keeps a
positive α that doubles at the start of every step and halves after every rejected query).
After `max_refinements` rejections the `at_cap` rule picks the plan. An accepted plan still
goes through `verify()`; a physical failure re-plans with the environment feedback
(`max_replans`). History: the last executed round only. Every call counts in NQ and
respects `max_queries_per_step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coopbench.agents import prompts as P
from coopbench.agents.replies import parse_joint, parse_own
from coopbench.core.errors import ConfigError
from coopbench.core.types import Action, CriticRequest, ParseError
from coopbench.envs.base import LanguageEnv
from coopbench.llm.base import Message, Oracle
from coopbench.planners.base import AdvantageCritic
from coopbench.planners.llm_base import LLMPlanner, LLMPlannerConfig, StepContext
from coopbench.planners.scoring import legal_joints


def texts_of(joint: dict[str, Action]) -> str:
    return P.plan_lines({a: x.text for a, x in joint.items()})


READ_RULES = (
    "Every response gets an advantage score from a learned critic: a score above the given "
    "number counts as helpful, and higher is better. When you get [Improve Feedback], change "
    "your answer as it asks. Choose one action for the current step only."
)


@dataclass
class ReadConfig(LLMPlannerConfig):
    history: str = "last"  # ReAd keeps the last executed round only
    critic: str = "auto"  # checkpoint path | "auto" (shipped, else cached, else train) | "train"
    critic_device: str = "cpu"  # where scoring runs (tiny MLP: CPU is fastest per call)
    strict_critic: bool = False  # a poor on-demand critic is an error, not a warning
    acceptance: str = "relative"  # "relative" (best alternative − margin) | "absolute" (ε₀/α)
    accept_margin: float = 0.05  # relative acceptance: margin under the best, doubling
    max_enumerate: int = 4096  # legal joint plans ranked for the best alternative
    threshold_schedule: str = "logs"  # "logs" (ε₀ doubles per rejection) | "paper" (α halves)
    eps0: float = -0.02  # initial threshold for "logs" (per task in the logs, -1.5..0)
    alpha0: float = 0.02  # initial α for "paper" (> 0)
    threshold_units: str = "std"  # eps0/alpha0 in units of the critic's return std, or "raw"
    max_refinements: int = 10  # critic rejections per agent (S) / per re-plan (J) before at_cap
    at_cap: str = "best"  # "best" (highest-scored proposal) | "last" | "wait" (consume step)
    baseline: str = "value"  # ReAd-J: "value" = V(s) | "wait" = Q(s, all-WAIT)/γ
    agent_order: str = ""  # ReAd-S: comma-separated agents; "" = the env's agent order
    max_queries_per_step: int = 30
    train_seconds: float = 120.0  # on-demand training budget when no checkpoint exists

    def validate(self, planner: str) -> None:
        super().validate(planner)
        if self.acceptance not in ("relative", "absolute"):
            raise ConfigError(f"{planner}: acceptance must be relative or absolute")
        if self.accept_margin < 0 or self.max_enumerate < 1:
            raise ConfigError(f"{planner}: accept_margin must be >= 0, max_enumerate >= 1")
        if self.threshold_schedule not in ("logs", "paper"):
            raise ConfigError(f"{planner}: threshold_schedule must be logs or paper")
        if self.at_cap not in ("best", "last", "wait"):
            raise ConfigError(f"{planner}: at_cap must be best, last or wait")
        if self.baseline not in ("value", "wait"):
            raise ConfigError(f"{planner}: baseline must be value or wait")
        if self.threshold_units not in ("std", "raw"):
            raise ConfigError(f"{planner}: threshold_units must be std or raw")
        if self.threshold_schedule == "paper" and self.alpha0 <= 0:
            raise ConfigError(f"{planner}: the paper's schedule needs alpha0 > 0")
        if self.max_refinements < 1:
            raise ConfigError(f"{planner}: max_refinements must be >= 1")


@dataclass
class Proposal:
    reply: str
    score: float
    action: Any  # an Action (ReAd-S) or a joint dict (ReAd-J)


@dataclass
class Proposer:
    """What ReAd-J and ReAd-S refine differently; `ReadPlanner.refine` is the loop itself."""

    speaker: Callable[[], str]  # who proposes next (ReAd-J rotates personas)
    prompt: Callable[[str, str | None], tuple[list[Message], list[str] | None]]
    oracle: Callable[[], Oracle | None]  # the sim LLM's answer key (None for real models)
    parse: Callable[[str], Any]  # reply -> proposal; raises ParseError
    score: Callable[[Any], float]  # a proposal's advantage
    describe: Callable[[Any], dict[str, Any]]  # a proposal in the transcript
    subject: str  # whose reply could not be parsed, in the improve block
    noun: str  # "plan" (joint) or "action" (own), in the score line
    agent: str | None = None  # ReAd-S names the agent in its notes


class ReadPlanner(LLMPlanner):
    Config = ReadConfig

    def critic_request(self) -> CriticRequest | None:
        cfg = self.cfg
        return CriticRequest(cfg.critic, cfg.critic_device, cfg.train_seconds, cfg.strict_critic)

    def reset(
        self, env: LanguageEnv, llm: Any, rng: Any, critic: AdvantageCritic | None = None
    ) -> None:
        super().reset(env, llm, rng, critic)
        if critic is None:
            raise ConfigError(
                f"{type(self).__name__} needs an advantage critic: resolve one with "
                "coopbench.critics.resolve.locate(env, planner.critic_request()).critic and "
                "pass it to reset (the runner and the CLI do)"
            )
        # scores are in return units, which differ by task (a soup is worth 20, a cube 1)
        self.scale = critic.return_scale if self.cfg.threshold_units == "std" else 1.0
        self.alpha = self.cfg.alpha0 * self.scale / 2  # doubled at the start of the first step

    # -- thresholds -----------------------------------------------------------------------

    def start_threshold(self) -> None:
        """Paper: α doubles at the start of every step (the logs' ε₀ needs nothing)."""
        if self.cfg.acceptance == "absolute" and self.cfg.threshold_schedule == "paper":
            self.alpha *= 2

    def agent_threshold(self, best: float) -> float:
        """Relative: `best` (the best legal alternative's score) less the margin. Absolute,
        logs: ε₀ again for every agent and re-plan; paper: wherever α has got to."""
        if self.cfg.acceptance == "relative":
            self.best = best
            return best - self.cfg.accept_margin * self.scale
        if self.cfg.threshold_schedule == "paper":
            return self.alpha
        return self.cfg.eps0 * self.scale

    def relax(self, threshold: float) -> float:
        if self.cfg.acceptance == "relative":  # twice as far under the best
            return self.best - 2 * (self.best - threshold)
        if self.cfg.threshold_schedule == "paper":
            self.alpha = threshold / 2
            return self.alpha
        return threshold * 2 if threshold < 0 else threshold

    def pick_at_cap(self, proposals: list[Proposal]) -> Proposal | None:
        if not proposals or self.cfg.at_cap == "wait":
            return None
        if self.cfg.at_cap == "last":
            return proposals[-1]
        return max(proposals, key=lambda p: p.score)

    # -- the refinement loop (ReAd's Algorithm 1 inner loop, shared by -J and -S) ----------

    def refine(
        self,
        ctx: StepContext,
        env: LanguageEnv,
        proposer: Proposer,
        threshold: float,
        chat: list[str],
        first_attempt: int,
    ) -> tuple[Proposal | None, float]:
        """Ask until the critic accepts a proposal or `max_refinements` run out.

        Every rejection sends ReAd's improve block and relaxes the threshold; at the cap the
        `at_cap` rule picks among the proposals. Returns the choice and the last threshold.
        """
        agent_note = {} if proposer.agent is None else {"agent": proposer.agent}
        proposals: list[Proposal] = []
        improve: str | None = None
        for k in range(self.cfg.max_refinements):
            speaker = proposer.speaker()
            messages, choices = proposer.prompt(speaker, improve)
            reply = self.ask(ctx, env, messages, agent=speaker, oracle=proposer.oracle(),
                             attempt=first_attempt + k, choices=choices)
            try:
                proposal = proposer.parse(reply)
            except ParseError as exc:
                ctx.parse_failed(exc, **agent_note)
                chat.append(f"[{speaker}]: {reply.strip()}\n[Parse Error] {exc}")
                improve = P.section(
                    "Improve Feedback",
                    f"{proposer.subject} could not be parsed: {exc} Re-format it.",
                )
                continue
            score = proposer.score(proposal)
            accepted = score > threshold
            ctx.note("score", agent=speaker, score=score, threshold=threshold,
                     accepted=accepted, **proposer.describe(proposal))
            line = P.score_line(speaker, score, accepted, proposer.noun)
            chat.append(f"[{speaker}]: {reply.strip()}\n{line}")
            proposals.append(Proposal(reply, score, proposal))
            if accepted:
                return proposals[-1], threshold
            ctx.feedback_rounds += 1
            improve = P.improve_section(speaker, reply, score, threshold)
            threshold = self.relax(threshold)
        chosen = self.pick_at_cap(proposals)
        ctx.note("at_cap", **agent_note, rule=self.cfg.at_cap,
                 chosen=None if chosen is None else chosen.score)
        return chosen, threshold

    def verified(
        self, ctx: StepContext, env: LanguageEnv, joint: dict, env_feedback: list[str]
    ) -> bool:
        """Physically verify a plan that passed the critic; a failure becomes feedback."""
        problems = env.verify(joint)
        if not problems:
            return True
        text = ctx.verify_failed(problems)
        env_feedback.append(f"This plan failed:\n{texts_of(joint)}\n{text}")
        return False

    def order(self, env: LanguageEnv) -> list[str]:
        """ReAd-S's speaking order: `agent_order`, else the critic's agent order."""
        if not self.cfg.agent_order:
            return [a for a in self.critic.agents if a in env.agents]
        order = [a.strip() for a in self.cfg.agent_order.split(",") if a.strip()]
        if sorted(order) != sorted(env.agents):
            raise ConfigError(
                f"agent_order {self.cfg.agent_order!r} must name each of "
                f"{', '.join(env.agents)} once"
            )
        return order

    def base_sections(self, env: LanguageEnv, instruction: str) -> list[str | None]:
        return [
            P.section("Task", env.task_prompt()),
            instruction,
            P.section("Advantage", READ_RULES),
            P.history_section(self.visible_rounds()),
        ]


class ReadJPlanner(ReadPlanner):
    """ReAd-J: joint proposals scored by Q(s, a) − V(s)."""

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        agents = list(env.agents)
        feats = env.features()
        if self.cfg.baseline == "value":
            base = self.critic.value(feats)
        else:
            base = self.critic.q(feats, self.wait_all(env)) / self.critic.gamma
        env_feedback: list[str] = []
        earlier: list[str] = []
        self.start_threshold()
        best = self.best_joint_score(env, agents, feats, base)
        for replan in range(self.cfg.max_replans):
            chat: list[str] = []
            proposer = self.joint_proposer(ctx, env, agents, feats, base, chat,
                                           env_feedback, earlier)
            chosen, _ = self.refine(ctx, env, proposer, self.agent_threshold(best), chat,
                                    replan * self.cfg.max_refinements)
            if chosen is None:
                return None
            if self.verified(ctx, env, chosen.action, env_feedback):
                ctx.said = chat
                return chosen.action
            earlier += chat
        return None

    def joint_proposer(
        self,
        ctx: StepContext,
        env: LanguageEnv,
        agents: list[str],
        feats: np.ndarray,
        base: float,
        chat: list[str],
        env_feedback: list[str],
        earlier: list[str],
    ) -> Proposer:
        def prompt(persona: str, improve: str | None) -> tuple[list[Message], list[str] | None]:
            choices = self.joint_choices(env, agents)
            instruction = P.joint_instruction(env, agents, free_text=choices is None)
            messages = P.assemble(
                [
                    *self.base_sections(env, instruction),
                    P.state_section(env),
                    P.feedback_section(env_feedback),
                    P.chat_section(earlier, "Earlier Attempts This Step"),
                    P.chat_section(chat),
                    improve,
                ],
                P.user_line(persona),
            )
            return messages, choices

        return Proposer(
            speaker=lambda: agents[ctx.queries % len(agents)],
            prompt=prompt,
            oracle=lambda: self.oracle_joint(env, agents),
            parse=lambda reply: parse_joint(env, reply, agents),
            score=lambda joint: self.critic.q(feats, joint) - base,
            describe=lambda joint: {"plan": {a: x.text for a, x in joint.items()}},
            subject="The previous response",
            noun="plan",
        )

    def best_joint_score(
        self, env: LanguageEnv, agents: list[str], feats, base: float
    ) -> float:
        """The best legal joint plan's advantage (only relative acceptance needs it)."""
        if self.cfg.acceptance != "relative":
            return 0.0
        joints = legal_joints(env, agents, self.cfg.max_enumerate, self.rng)
        return float(np.max(self.critic.q_many(feats, joints))) - base


class ReadSPlanner(ReadPlanner):
    """ReAd-S: sequential own-action proposals scored by local (prefix) advantages."""

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        order = self.order(env)
        feats = env.features()
        env_feedback: list[str] = []
        self.start_threshold()
        for replan in range(self.cfg.max_replans):
            plan: dict[str, Action] = {}
            ctx.said = chat = []
            prev_q = self.critic.value(feats)
            for agent in order:
                best = self.best_own_score(env, agent, plan, feats, prev_q)
                proposer = self.own_proposer(env, agent, plan, feats, prev_q, chat,
                                             env_feedback)
                chosen, _ = self.refine(ctx, env, proposer, self.agent_threshold(best), chat,
                                        replan * self.cfg.max_refinements)
                plan[agent] = chosen.action if chosen else env.wait_action(agent)
                prev_q = self.critic.q(feats, plan)
            joint = {a: plan[a] for a in env.agents}
            if self.verified(ctx, env, joint, env_feedback):
                return joint
        return None

    def own_proposer(
        self,
        env: LanguageEnv,
        agent: str,
        plan: dict[str, Action],
        feats: np.ndarray,
        prev_q: float,
        chat: list[str],
        env_feedback: list[str],
    ) -> Proposer:
        def prompt(speaker: str, improve: str | None) -> tuple[list[Message], list[str] | None]:
            choices = self.own_choices(env, agent)
            messages = P.assemble(
                [
                    *self.base_sections(env, P.own_instruction(env, agent, choices is None)),
                    P.state_section(env, agent),
                    P.feedback_section(env_feedback),
                    P.chat_section(chat),
                    improve,
                ],
                P.user_line(agent),
            )
            return messages, choices

        return Proposer(
            speaker=lambda: agent,
            prompt=prompt,
            oracle=lambda: self.oracle_own(env, agent),
            parse=lambda reply: parse_own(env, agent, reply),
            score=lambda action: self.critic.q(feats, {**plan, agent: action}) - prev_q,
            describe=lambda action: {"action": action.text},
            subject=f"{agent}'s previous response",
            noun="action",
            agent=agent,
        )

    def best_own_score(
        self, env: LanguageEnv, agent: str, plan: dict[str, Action], feats, prev_q: float
    ) -> float:
        """The best legal action's local advantage for `agent` after `plan`'s prefix."""
        if self.cfg.acceptance != "relative":
            return 0.0
        options = [env.parse(agent, t) for t in env.action_options(agent)]
        return float(np.max(self.critic.q_many(feats, [{**plan, agent: o} for o in options])))\
            - prev_q
