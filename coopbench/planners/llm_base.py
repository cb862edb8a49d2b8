"""Shared machinery of the LLM planners: config, per-step accounting, the guarded LLM call.

`LLMPlanner.act` is the one step loop every LLM planner runs: attach the env's execution
feedback to the last round, open a `StepContext`, call the planner's `plan_step` hook, and
remember the round. The context counts every LLM call (the paper's NQ counts refinements,
re-plans and dialog turns alike), sums usage, records the transcript (prompts, replies,
scores, feedback) and enforces the hard per-step query cap: a call past the cap raises
`QueryCapReached`, and the step then ends with every agent's WAIT. A `plan_step` that
returns None (no acceptable plan within its own caps) ends the step the same way.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from dataclasses import dataclass, field
from itertools import product
from typing import Any, ClassVar

import numpy as np

from coopbench.agents import prompts as P
from coopbench.agents.oracle import joint_oracle, own_oracle, reflection_oracle
from coopbench.agents.prompts import Round
from coopbench.agents.replies import EXECUTE, PROCEED, format_joint, format_own, parse_joint
from coopbench.core.errors import ConfigError
from coopbench.core.types import Action, ParseError, PlanResult, Usage
from coopbench.envs.base import LanguageEnv
from coopbench.llm import capabilities
from coopbench.llm.base import Message, Oracle
from coopbench.llm.capabilities import DECODINGS, resolve_decoding
from coopbench.planners.base import AdvantageCritic, Planner


@dataclass
class LLMPlannerConfig:
    """Settings every LLM planner shares (docs/planners.md documents each default)."""

    max_replans: int = 5  # physical-verification/parse re-plans per step (RoCo num_replans)
    max_queries_per_step: int = 20  # hard cap on LLM calls per step; past it: all WAIT
    history: str = "all"  # "all" | "last" | "none" | "<n>" (last n executed rounds)
    temperature: float = 0.0  # first call of a step (RoCo/ReAd: 0)
    retry_temperature: float = 0.7  # later calls of a step, so a re-prompt can change its mind
    max_tokens: int = 512  # RoCo's setting
    decoding: str = "auto"  # "constrained" (reply = one legal plan) | "free" | "auto"
    max_choices: int = 512  # joint plans are only offered as choices up to this many
    oracle_alternatives: int = 4  # random legal plans handed to the sim LLM per request
    seed: int = 0  # added to the per-episode call seed (drawn from the episode's seed)

    @classmethod
    def from_kwargs(cls, planner: str, kwargs: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        if "use_choices" in kwargs:
            raise ConfigError(f"{planner}: use_choices was replaced by decoding: auto (constrained "
                              "wherever the model can), constrained or free")
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ConfigError(
                f"{planner}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        cfg = cls(**kwargs)
        cfg.validate(planner)
        return cfg

    def validate(self, planner: str) -> None:
        if self.decoding not in DECODINGS:
            raise ConfigError(f"{planner}: decoding must be one of {', '.join(DECODINGS)}")
        if self.history not in ("all", "last", "none") and not str(self.history).isdigit():
            raise ConfigError(f"{planner}: history must be all, last, none or a number")
        if self.max_replans < 1 or self.max_queries_per_step < 1:
            raise ConfigError(f"{planner}: max_replans and max_queries_per_step must be >= 1")


class QueryCapReached(Exception):
    """Raised by `StepContext.ask` when the step's query cap is spent."""


@dataclass
class StepContext:
    """Accounting for one `act()` call; becomes the `PlanResult`."""

    cap: int
    queries: int = 0
    parse_failures: int = 0
    verify_failures: int = 0
    feedback_rounds: int = 0
    usage: Usage = field(default_factory=Usage)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # the step's replies/dialog, kept with the round

    def note(self, entry_type: str, **data: Any) -> None:
        self.transcript.append({"type": entry_type, **data})

    def parse_failed(self, exc: ParseError, **data: Any) -> None:
        """Count an unparseable reply as a parse failure and a feedback round."""
        self.parse_failures += 1
        self.feedback_rounds += 1
        self.note("feedback", kind="parse", **data, message=str(exc))

    def verify_failed(self, problems: list) -> str:
        """Count a physically infeasible plan; returns the feedback text for the LLM."""
        self.verify_failures += 1
        self.feedback_rounds += 1
        text = "\n".join(f.message for f in problems)
        self.note("feedback", kind="verify", message=text)
        return text

    def result(self, joint: dict[str, Action]) -> PlanResult:
        return PlanResult(
            joint=joint,
            llm_queries=self.queries,
            feedback_rounds=self.feedback_rounds,
            parse_failures=self.parse_failures,
            verify_failures=self.verify_failures,
            usage=self.usage,
            transcript=self.transcript,
        )


class LLMPlanner(Planner):
    """Base of the LLM planners: the step loop, config parsing, history, the guarded `ask`.

    A subclass implements `plan_step`; everything around it (feedback, accounting, the
    query cap, the WAIT fallback, memory) is here, once.
    """

    Config: ClassVar[type[LLMPlannerConfig]] = LLMPlannerConfig
    uses_llm: ClassVar[bool] = True  # False: a planner of this family that needs no LLM

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.cfg = self.Config.from_kwargs(type(self).__name__, config)
        self.rounds: list[Round] = []

    def reset(
        self, env: LanguageEnv, llm: Any, rng: Any, critic: AdvantageCritic | None = None
    ) -> None:
        super().reset(env, llm, rng, critic)
        if llm is None and self.uses_llm:  # critic-greedy derives from here, needing none
            raise ConfigError(f"{type(self).__name__} needs an LLM (--llm local, sim:expert, ...)")
        self.rounds = []
        self.call_seed = self.cfg.seed + int(rng.integers(2**31))  # per episode, from its seed
        self.decoding = "" if llm is None else resolve_decoding(
            self.cfg.decoding, capabilities.of(llm), str(getattr(llm, "spec", llm)))

    # -- the step loop --------------------------------------------------------------------

    def act(self, env: LanguageEnv) -> PlanResult:
        self.absorb_execution_feedback(env)
        ctx = self.begin_step()
        try:
            joint = self.plan_step(ctx, env)
        except QueryCapReached:
            ctx.note("cap", message=f"query cap {ctx.cap} reached; all agents WAIT")
            joint = None
        chosen = {a: joint[a] for a in env.agents} if joint else self.wait_all(env)
        self.remember(env, ctx.said, chosen)
        return ctx.result(chosen)

    @abstractmethod
    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        """The joint plan for this step, or None to WAIT; put what was said in `ctx.said`."""

    # -- history --------------------------------------------------------------------------

    def visible_rounds(self) -> list[Round]:
        h = str(self.cfg.history)
        if h == "none":
            return []
        if h == "all":
            return list(self.rounds)
        n = 1 if h == "last" else int(h)
        return self.rounds[-n:] if n > 0 else []

    def remember(self, env: LanguageEnv, replies: list[str], joint: dict[str, Action]) -> None:
        """Keep the round about to be executed; the env's execution feedback is added later."""
        self.rounds.append(
            Round(env.steps_taken, list(replies), {a: x.text for a, x in joint.items()})
        )

    def absorb_execution_feedback(self, env: LanguageEnv) -> None:
        """Attach what the env said about the last executed step to that round."""
        last = getattr(env, "last_feedback", [])
        if self.rounds and last and not self.rounds[-1].feedback:
            self.rounds[-1].feedback = [f.message for f in last]

    # -- the guarded call -----------------------------------------------------------------

    def wants_choices(self) -> bool:
        """Constrained decoding: the legal plans go to the model as `choices=`."""
        return self.decoding == "constrained"

    def joint_choices(self, env: LanguageEnv, agents: list[str]) -> list[str] | None:
        """Every legal joint plan as a reply text, if offering them as choices is on and small."""
        if not self.wants_choices():
            return None
        options = [env.action_options(a) for a in agents]
        total = 1
        for o in options:
            total *= len(o)
        if total > self.cfg.max_choices:
            return None
        return [format_joint(dict(zip(agents, combo, strict=True))) for combo in product(*options)]

    def check(
        self, ctx: StepContext, env: LanguageEnv, reply: str, agents: list[str]
    ) -> tuple[dict[str, Action] | None, str]:
        """Parse then verify; on failure count it and return the feedback text for the LLM."""
        try:
            joint = parse_joint(env, reply, agents)
        except ParseError as exc:
            ctx.parse_failed(exc)
            return None, (
                f"Your previous response:\n{reply.strip()}\nIt could not be parsed: "
                f"{exc} Please re-format your answer."
            )
        problems = env.verify(joint)
        if problems:
            text = ctx.verify_failed(problems)
            plan = P.plan_lines({a: x.text for a, x in joint.items()})
            return None, f"This plan failed:\n{plan}\n{text}\nPlease propose a different plan."
        return joint, ""

    def own_choices(self, env: LanguageEnv, agent: str) -> list[str] | None:
        if not self.wants_choices():
            return None
        return [format_own(agent, o) for o in env.action_options(agent)]

    def ask(
        self,
        ctx: StepContext,
        env: LanguageEnv,
        messages: list[Message],
        *,
        oracle: Oracle | None,
        attempt: int,
        agent: str | None = None,
        choices: list[str] | None = None,
        purpose: str = "plan",
    ) -> str:
        """One counted LLM call; the temperature and sample index change with `attempt`."""
        if ctx.queries >= ctx.cap:
            raise QueryCapReached
        completion = self.llm.complete(
            messages,
            choices=choices,
            temperature=self.cfg.temperature if attempt == 0 else self.cfg.retry_temperature,
            max_tokens=self.cfg.max_tokens,
            seed=self.call_seed + env.steps_taken,
            sample=attempt,
            oracle=oracle,
            meta=self.call_meta(env, agent, purpose),
        )
        ctx.queries += 1
        ctx.usage = ctx.usage + completion.usage
        ctx.note(
            "query",
            agent=agent,
            purpose=purpose,
            attempt=attempt,
            prompt=messages,
            reply=completion.text,
            cached=completion.cached,
            latency_s=round(getattr(completion, "latency_s", 0.0), 4),
        )
        return completion.text

    def score(
        self,
        ctx: StepContext,
        env: LanguageEnv,
        messages: list[Message],
        candidates: list[str],
        *,
        oracle: Oracle | None,
        agent: str | None = None,
        purpose: str = "score",
    ) -> np.ndarray:
        """One counted scoring pass: log μ(candidate | messages) for every candidate."""
        if ctx.queries >= ctx.cap:
            raise QueryCapReached
        scores = self.llm.score(
            messages,
            candidates,
            seed=self.call_seed + env.steps_taken,
            oracle=oracle,
            meta=self.call_meta(env, agent, purpose),
        )
        ctx.queries += scores.usage.calls
        ctx.usage = ctx.usage + scores.usage
        best = scores.best()
        ctx.note("query", agent=agent, purpose=purpose, prompt=messages,
                 candidates=len(candidates), reply=candidates[best],
                 log_mu=round(scores.logprobs[best], 4), method=scores.method,
                 cached=scores.cached, latency_s=round(getattr(scores, "latency_s", 0.0), 4))
        return np.asarray(scores.logprobs, dtype=float)

    def call_meta(self, env: LanguageEnv, agent: str | None, purpose: str) -> dict[str, Any]:
        return {
            "step": env.steps_taken,
            "agent": agent,
            "purpose": purpose,
            "planner": getattr(getattr(self, "spec", None), "id", type(self).__name__),
        }

    def begin_step(self) -> StepContext:
        self._expert: dict[str, Action] | None = None
        return StepContext(cap=self.cfg.max_queries_per_step)

    def expert(self, env: LanguageEnv) -> dict[str, Action]:
        """The env's expert for the current state, computed once per step (it can be slow)."""
        if getattr(self, "_expert", None) is None:
            self._expert = env.expert_joint()
        return self._expert

    def oracle_joint(
        self, env: LanguageEnv, agents: list[str], keyword: str = EXECUTE, preface: str = ""
    ) -> Oracle | None:
        """What the sim LLM answers from (None for real models: they never see it)."""
        if not self.simulated:
            return None
        return joint_oracle(
            env,
            self.expert(env),
            self.rng,
            keyword=keyword,
            preface=preface,
            n_alternatives=self.cfg.oracle_alternatives,
            agents=agents,
        )

    def oracle_own(self, env: LanguageEnv, agent: str, keyword: str = PROCEED) -> Oracle | None:
        if not self.simulated:
            return None
        return own_oracle(
            env,
            agent,
            self.expert(env)[agent],
            self.rng,
            keyword=keyword,
            n_alternatives=self.cfg.oracle_alternatives,
        )

    def oracle_reflection(self, problem: str) -> Oracle | None:
        return reflection_oracle(problem) if self.simulated else None

    @property
    def simulated(self) -> bool:
        """Whether the LLM is the simulated one (the only model that is handed oracles)."""
        return bool(getattr(self.llm, "simulated", False))
