"""Parallel (one-call) LLM planners: Central Plan, ReAct, MindAgent, Reflexion.

All four see the global state and propose the whole joint plan in one call; a plan that fails
to parse or fails `verify()` is sent back with the environment feedback, up to `max_replans`
times (then every agent WAITs: the step is consumed, as in RoCo). They differ in the prompt
and the memory (read-method.md §5):

- Central Plan: bare `EXECUTE` output, full history.
- ReAct: `Think: ...` then `Action: EXECUTE ...`, full history.
- MindAgent: a central dispatcher with a short history window (last 3 rounds) that shows the
  execution feedback of each round.
- Reflexion: after every failed parse or verification it spends one extra call writing a
  reflection (what went wrong, what to change); the last `reflection_window` reflections are
  shown in every later prompt of the episode, and, with `carry_reflections`, of later
  episodes played by the same planner object.
"""

from __future__ import annotations

from dataclasses import dataclass

from coopbench.agents import prompts as P
from coopbench.core.types import Action
from coopbench.envs.base import LanguageEnv
from coopbench.planners.llm_base import LLMPlanner, LLMPlannerConfig, StepContext


class JointPlanner(LLMPlanner):
    """Central Plan (the base of the parallel family)."""

    think: str = ""  # replaces the output instruction's lead
    preface: str = ""  # what the sim's answers start with (free-text mode only)
    role: str = (
        "You plan for all robots at once: give every robot exactly one action for this step."
    )
    history_title = "Previous Round History"

    def extra_sections(self) -> list[str | None]:
        return []

    def prompt(
        self, env: LanguageEnv, agents: list[str], feedback: list[str], free_text: bool = True
    ) -> list:
        return P.assemble(
            [
                P.section("Task", env.task_prompt()),
                P.joint_instruction(env, agents, self.think, free_text),
                P.section("Role", self.role),
                *self.extra_sections(),
                P.history_section(self.visible_rounds(), self.history_title),
                P.state_section(env),
                P.feedback_section(feedback),
            ],
            P.user_line(None),
        )

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        agents = list(env.agents)
        feedback: list[str] = []
        for attempt in range(self.cfg.max_replans):
            choices = self.joint_choices(env, agents)
            oracle = self.oracle_joint(env, agents, preface="" if choices else self.preface)
            reply = self.ask(
                ctx,
                env,
                self.prompt(env, agents, feedback, free_text=choices is None),
                oracle=oracle,
                attempt=attempt,
                choices=choices,
            )
            ctx.said = [reply]
            joint, problem = self.check(ctx, env, reply, agents)
            if joint is not None:
                return joint
            feedback.append(problem)
            self.after_failure(ctx, env, problem, attempt)
        return None

    def after_failure(self, ctx: StepContext, env: LanguageEnv, problem: str, attempt: int) -> None:
        """Hook for Reflexion."""


class ReactPlanner(JointPlanner):
    think = (
        "First write 'Think:' with your reasoning about the current state, then write "
        "'Action:' and then"
    )
    preface = "Think: the state shows what each robot can usefully do now.\nAction:"
    history_title = "Previous Rounds (state, response, feedback)"


@dataclass
class MindAgentConfig(LLMPlannerConfig):
    history: str = "3"


class MindAgentPlanner(JointPlanner):
    Config = MindAgentConfig
    role = (
        "You are the central dispatcher of a team of robots. Each step, assign one action to "
        "every robot so that the team completes the task as fast as possible; read the "
        "execution feedback of the last rounds before dispatching."
    )


@dataclass
class ReflexionConfig(LLMPlannerConfig):
    reflection_window: int = 3  # reflections shown in later prompts
    carry_reflections: bool = True  # keep them across episodes of this planner object


class ReflexionPlanner(JointPlanner):
    Config = ReflexionConfig

    def __init__(self, **config):
        super().__init__(**config)
        self.reflections: list[str] = []

    def reset(self, env, llm, rng) -> None:
        super().reset(env, llm, rng)
        if not self.cfg.carry_reflections:
            self.reflections = []

    def extra_sections(self) -> list[str | None]:
        shown = self.reflections[-self.cfg.reflection_window :]
        return [P.section("Reflections", "\n".join(shown))] if shown else []

    def after_failure(self, ctx: StepContext, env: LanguageEnv, problem: str, attempt: int) -> None:
        messages = P.assemble(
            [
                P.section("Task", env.task_prompt()),
                P.section(
                    "Reflection Instruction",
                    "A plan failed. In two or three sentences, say what went wrong and what "
                    "to do differently next time. Start with 'Reflection:'.",
                ),
                P.state_section(env),
                P.feedback_section([problem]),
            ],
            P.user_line(None),
        )
        text = self.ask(ctx, env, messages, oracle=self.oracle_reflection(problem),
                        attempt=attempt + 1, purpose="reflect")
        self.reflections.append(" ".join(text.split())[:400])
