"""RoCo's dialog planner: agents speak in turn from their own partial views.

Each dialog round calls the agents in a fixed order; a reply ends with `PROCEED` (keep
talking) or `EXECUTE` plus one line per robot. The round ends at a reply with `EXECUTE` once
every agent has spoken; the last allowed call (`max_calls_per_round`, RoCo: 10) is told to
`EXECUTE`. The agreed plan is parsed and verified; a failure starts a new dialog round with the
environment feedback shown (`max_replans`, RoCo's num_replans: 5). History: all rounds.
No plan within the caps: the step is consumed with every agent WAITing (RoCo).
"""

from __future__ import annotations

from dataclasses import dataclass

from coopbench.agents import prompts as P
from coopbench.agents.replies import EXECUTE, PROCEED, has_keyword
from coopbench.core.types import Action
from coopbench.envs.base import LanguageEnv
from coopbench.planners.llm_base import LLMPlanner, LLMPlannerConfig, StepContext


@dataclass
class RocoConfig(LLMPlannerConfig):
    max_calls_per_round: int = 10  # dialog calls per replan (RoCo)
    max_queries_per_step: int = 50  # RoCo's worst case: 5 replans x 10 calls


class RocoPlanner(LLMPlanner):
    Config = RocoConfig

    def prompt(
        self,
        env: LanguageEnv,
        agent: str,
        agents: list[str],
        chat: list[str],
        feedback: list[str],
        must_execute: bool,
        free_text: bool = True,
    ) -> list:
        rules = (
            f"You are {agent}, one of the robots {', '.join(agents)}. Discuss with your "
            "teammates to agree on one action per robot for this step. Check your teammates' "
            "proposals against what you see and correct them, and use the [Environment "
            f"Feedback] of failed plans. End your reply with '{PROCEED}' to keep discussing, or "
            f"with '{EXECUTE}' followed by one 'NAME <robot> ACTION <action>' line per robot "
            "once the plan is agreed. The step's plan is the first EXECUTE after every robot "
            "has spoken."
        )
        return P.assemble(
            [
                P.section("Task", env.task_prompt()),
                P.joint_instruction(env, agents, free_text=free_text),
                P.section("Dialog Rules", rules),
                P.history_section(self.visible_rounds()),
                P.state_section(env, agent),
                P.feedback_section(feedback),
                P.chat_section(chat),
                P.section("Instruction", f"You must answer with {EXECUTE} and the full plan now.")
                if must_execute
                else None,
            ],
            P.user_line(agent),
        )

    def plan_step(self, ctx: StepContext, env: LanguageEnv) -> dict[str, Action] | None:
        agents = list(env.agents)
        feedback: list[str] = []
        for replan in range(self.cfg.max_replans):
            ctx.said = chat = []
            plan_reply = self.dialog(ctx, env, agents, chat, feedback, replan)
            if plan_reply is None:
                ctx.parse_failures += 1
                ctx.feedback_rounds += 1
                feedback.append("The dialog ended without an agreed EXECUTE plan.")
                ctx.note("feedback", kind="parse", message=feedback[-1])
                continue
            joint, problem = self.check(ctx, env, plan_reply, agents)
            if joint is not None:
                return joint
            feedback.append(problem)
        return None

    def dialog(
        self,
        ctx: StepContext,
        env: LanguageEnv,
        agents: list[str],
        chat: list[str],
        feedback: list[str],
        replan: int,
    ) -> str | None:
        """One dialog round; the reply that carries the agreed plan, or None."""
        spoken: set[str] = set()
        for call in range(self.cfg.max_calls_per_round):
            agent = agents[call % len(agents)]
            last = call == self.cfg.max_calls_per_round - 1
            choices = self.joint_choices(env, agents)
            messages = self.prompt(env, agent, agents, chat, feedback, last,
                                   free_text=choices is None)
            reply = self.ask(
                ctx,
                env,
                messages,
                agent=agent,
                oracle=self.oracle_joint(env, agents),
                attempt=replan * self.cfg.max_calls_per_round + call,
                choices=choices,
            )
            chat.append(f"[{agent}]: {reply.strip()}")
            spoken.add(agent)
            if not (has_keyword(reply, EXECUTE) or has_keyword(reply, PROCEED)):
                ctx.parse_failures += 1  # neither keyword: malformed, say so in the chat
                msg = f"[{agent}]'s reply has neither {PROCEED} nor {EXECUTE}."
                chat.append(f"[Parse Error] {msg}")
                ctx.note("feedback", kind="parse", agent=agent, message=msg)
            if has_keyword(reply, EXECUTE) and (len(spoken) == len(agents) or last):
                return reply
        return None
