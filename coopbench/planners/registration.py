"""Registers the built-in planner ids (strings only: importing this is cheap)."""

from __future__ import annotations

from coopbench.core.caps import PlannerCaps
from coopbench.core.registry import Registry

NO_LLM = PlannerCaps(needs_llm=False, mode="joint")
NO_LLM_CRITIC = PlannerCaps(needs_llm=False, mode="joint", needs_critic=True)
JOINT = PlannerCaps(needs_llm=True, mode="joint")
JOINT_CRITIC = PlannerCaps(needs_llm=True, mode="joint", needs_critic=True)
# dialog planners plan from per-agent views; a fully observed env serves each the global view
DIALOG = PlannerCaps(needs_llm=True, mode="sequential", uses_partial_obs=True)
DIALOG_CRITIC = PlannerCaps(needs_llm=True, mode="sequential", uses_partial_obs=True,
                            needs_critic=True)

LLM_PLANNERS = (
    ("llm/central-v0", "coopbench.planners.joint:JointPlanner", JOINT,
     "Central Plan: one call proposes the joint plan from the global state; physical-"
     "verification feedback; full history."),
    ("llm/react-v0", "coopbench.planners.joint:ReactPlanner", JOINT,
     "ReAct: think, then act; one joint call per attempt; full history."),
    ("llm/mindagent-v0", "coopbench.planners.joint:MindAgentPlanner", JOINT,
     "MindAgent-style central dispatcher; execution feedback; last 3 rounds of history."),
    ("llm/reflexion-v0", "coopbench.planners.joint:ReflexionPlanner", JOINT,
     "Reflexion: joint planning; a failed plan triggers a written reflection read later."),
    ("llm/roco-v0", "coopbench.planners.roco:RocoPlanner", DIALOG,
     "RoCo dialog: agents speak in turn from partial views; EXECUTE ends the round; "
     "physical-verification re-plans (5 x 10 calls)."),
    ("read/read-j-v0", "coopbench.planners.read:ReadJPlanner",
     JOINT_CRITIC,
     "ReAd-J: joint proposals refined by a learned joint advantage critic; last-round history."),
    ("read/read-s-v0", "coopbench.planners.read:ReadSPlanner",
     DIALOG_CRITIC,
     "ReAd-S: agents propose in turn; each refined by its local (prefix) advantage."),
    ("read/read-j-scored-v0", "coopbench.planners.scored:ScoredReadJPlanner",
     JOINT_CRITIC,
     "ReAd-J, scored: argmax of calibrated log mu + A/beta over the critic's best legal "
     "joint plans (needs a model that scores: local, sim, logprobs endpoints)."),
    ("read/read-s-scored-v0", "coopbench.planners.scored:ScoredReadSPlanner",
     DIALOG_CRITIC,
     "ReAd-S, scored: each agent in turn takes argmax of calibrated log mu + local A/beta."),
    ("llm/llm-score-v0", "coopbench.planners.scored:LLMScorePlanner", JOINT,
     "The calibrated LLM log-probability argmax over legal joint plans; no critic."),
)


def register(registry: Registry) -> None:
    registry.register(
        "baseline/random-v0",
        "coopbench.planners.baseline:RandomPlanner",
        description="Uniform over each agent's legal actions (the floor; no LLM).",
        caps=NO_LLM,
    )
    registry.register(
        "baseline/expert-v0",
        "coopbench.planners.baseline:ExpertPlanner",
        description="The env's scripted expert_joint() (the ceiling; no LLM).",
        caps=NO_LLM,
    )
    registry.register(
        "baseline/critic-greedy-v0",
        "coopbench.planners.scored:CriticGreedyPlanner",
        description="The ReAd critic's argmax over legal joint plans (no LLM).",
        caps=NO_LLM_CRITIC,
    )
    for id, entry, caps, description in LLM_PLANNERS:
        registry.register(id, entry, description=description, caps=caps)
