"""Overcooked-AI as a coopbench env: PettingZoo `ParallelEnv` + `LanguageEnv`.

The game itself is overcooked-ai 1.1.0's `OvercookedGridworld.get_state_transition`, the same
call its `OvercookedEnv.step` makes, so states and rewards match the raw env exactly (tested).
Text and features are computed only when asked for; `step()` does only what PettingZoo needs.

Arguments (all settable through `coopbench.envs.make(id, **kwargs)`):

=================  ==========================================================================
layout             a layout shipped with overcooked-ai (classic five: see `layouts.py`)
setting            "classic" (layout's recipe, 400 ticks) or "read" (2-onion soup, cook 2)
action_level       "primitive" (north/south/east/west/stay/interact) or "skills"
obs_type           "compact" (39 numbers, default), "compact_soup" (compact plus the
                   ingredients of held soups: 43), "lossless" (W x H x 26 planes) or
                   "featurized" (overcooked-ai's 96 hand features; builds an MLAM)
horizon            game ticks per episode (classic 400; ReAd primitive = the step cap)
max_steps          interaction steps (decisions) per episode
min_soups          soups delivered for success (default 1)
view_radius        if set, `describe(agent)` shows only cells within this Chebyshev radius
max_skill_ticks    a skill that runs longer than this gives up (default 40 + cook time)
start              "fixed" (the layout's standard start, default) or "seeded" (both players
                   on tiles drawn from the reset seed; see `start.py`)
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from coopbench.core.errors import CoopbenchError
from coopbench.core.types import Action, Feedback
from coopbench.envs.base import VocabularyEnv
from coopbench.envs.overcooked import control, expert
from coopbench.envs.overcooked import features as feat
from coopbench.envs.overcooked import skills as sk
from coopbench.envs.overcooked import text as txt
from coopbench.envs.overcooked.kitchen import Kitchen, fmt
from coopbench.envs.overcooked.layouts import build_mdp, check_layout, make_setting
from coopbench.envs.overcooked.start import STARTS, seeded_start
from coopbench.envs.overcooked.upstream import OCAction, apply_recipes

PRIMITIVES = ["north", "south", "east", "west", "stay", "interact"]  # = Action.INDEX_TO_ACTION
PRIMITIVE_ALIASES = {
    **{f"move {d}": d for d in ("north", "south", "east", "west")},
    **{f"go {d}": d for d in ("north", "south", "east", "west")},
    "up": "north", "down": "south", "right": "east", "left": "west",
    "move up": "north", "move down": "south", "move right": "east", "move left": "west",
    "wait": "stay", "noop": "stay", "no-op": "stay", "idle": "stay", "do nothing": "stay",
    "interact with the cell in front": "interact", "use": "interact",
}
OBS_TYPES = ("compact", "compact_soup", "lossless", "featurized")
_STAY, _INTERACT = 4, 5


class OvercookedEnv(VocabularyEnv):
    """Two agents, Alice (player 0) and Bob (player 1), in an Overcooked-AI kitchen."""

    metadata = {"name": "overcooked_v0", "render_modes": ["rgb_array"],
                "is_parallelizable": True}
    possible_agents = ["Alice", "Bob"]
    features_version = feat.FEATURES_VERSION

    def __init__(
        self,
        layout: str = "cramped_room",
        setting: str = "classic",
        action_level: str = "primitive",
        obs_type: str = "compact",
        horizon: int | None = None,
        max_steps: int | None = None,
        min_soups: int | None = None,
        view_radius: int | None = None,
        max_skill_ticks: int | None = None,
        start: str = "fixed",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode)
        if obs_type not in OBS_TYPES:
            raise CoopbenchError(
                f"unknown obs_type {obs_type!r}; use one of {', '.join(OBS_TYPES)}")
        if start not in STARTS:
            raise CoopbenchError(f"unknown start {start!r}; use one of {', '.join(STARTS)}")
        self.start = start
        if render_mode not in (None, "rgb_array"):
            raise CoopbenchError(f"render_mode {render_mode!r} is not supported; use 'rgb_array'")
        self.layout = check_layout(layout)
        self.setting = make_setting(setting, self.layout, action_level=action_level,
                                    horizon=horizon, max_steps=max_steps, min_soups=min_soups)
        self.action_level = action_level
        self.obs_type = obs_type
        self.view_radius = view_radius
        self.max_steps = self.setting.max_steps
        self.mdp = build_mdp(self.layout, self.setting)
        self._recipes = self.mdp.recipe_config
        self.kitchen = Kitchen(self.mdp)
        cook = int(self._recipes.get("cook_time", 20))
        self.max_skill_ticks = max_skill_ticks or 40 + cook
        if action_level == "skills":
            self._skills = sk.vocabulary(self.kitchen)
            self._vocab = [s.text for s in self._skills]
            self._skill_index = {(s.kind, s.arg): i for i, s in enumerate(self._skills)}
        else:
            self._vocab = list(PRIMITIVES)
        self._all_mask = np.ones(len(self._vocab), dtype=np.int8)
        self._all_mask.flags.writeable = False
        self._legal_cache: tuple[Any, dict[str, list[int]]] = (None, {})
        self._mlam = None
        self.state = None
        self.ticks = 0
        self.soups_delivered = 0
        self.score = 0.0
        self.shaped_score = 0.0
        self.last_ticks = 0
        self.last_runs: list[control.SkillRun] = []
        self._last_shaped = [0, 0]

    # -- vocabulary -----------------------------------------------------------------------

    def vocabulary(self, agent: str) -> list[str]:
        return self._vocab

    def text_aliases(self, agent: str) -> dict[str, str]:
        if self.action_level == "skills":
            return sk.aliases(self.kitchen)
        return PRIMITIVE_ALIASES

    def wait_index(self, agent: str) -> int:
        return _STAY if self.action_level == "primitive" else len(self._vocab) - 1

    def legal_indices(self, agent: str) -> list[int]:
        if self.action_level == "primitive":
            return list(range(len(PRIMITIVES)))  # moving into a wall turns: always legal
        # Keyed by content, not identity, so a restored or edited state is never served stale.
        key = (self.steps_taken, self.state.timestep, hash(self.state))
        if self._legal_cache[0] != key:
            apply_recipes(self._recipes)
            self._legal_cache = (key, {})
        cache = self._legal_cache[1]
        if agent not in cache:
            i = self.possible_agents.index(agent)
            cache[agent] = [k for k, s in enumerate(self._skills)
                            if sk.feasible(self.kitchen, self.state, s, i)]
        return cache[agent]

    def action_mask(self, agent: str) -> np.ndarray:
        if self.action_level == "primitive":
            return self._all_mask
        return super().action_mask(agent)

    # -- dynamics -------------------------------------------------------------------------

    def _reset(self, seed: int | None, options: dict | None) -> None:
        apply_recipes(self._recipes)
        if self.start == "seeded":
            self.state = seeded_start(self.mdp, self.kitchen, self.np_random)
        else:
            self.state = self.mdp.get_standard_start_state()
        self.ticks = 0
        self.soups_delivered = 0
        self.score = 0.0
        self.shaped_score = 0.0
        self.last_ticks = 0
        self._last_shaped = [0, 0]

    def step(self, actions: Mapping[str, Any]):
        """One interaction step: one tick (primitive) or one skill per agent (skills)."""
        if not self.agents:
            self._require_state()
            raise CoopbenchError("the episode is over; call reset() before step()")
        apply_recipes(self._recipes)
        if self.action_level == "primitive":
            indices = [self._index(a, actions) for a in self.possible_agents]
            before = self.score
            self._tick((OCAction.INDEX_TO_ACTION[indices[0]],
                        OCAction.INDEX_TO_ACTION[indices[1]]))
            reward, feedback, ticks = self.score - before, [], 1
        else:
            joint = {a: self.action(a, self._index(a, actions)) for a in self.possible_agents}
            reward, feedback = self._apply(joint)
            ticks = self.last_ticks
        self.steps_taken += 1
        self.last_ticks = ticks
        self.last_team_reward = reward
        self.last_feedback = feedback
        setting = self.setting
        won = self.soups_delivered >= setting.min_soups
        done = won and setting.end_on_success
        truncated = not done and (self.steps_taken >= self.max_steps
                                  or self.ticks >= setting.horizon)
        agents = self.possible_agents
        obs = self._observations_now()
        infos = self._infos_now(feedback, ticks)
        if done or truncated:
            self.agents = []
        return (obs, {a: reward for a in agents}, {a: done for a in agents},
                {a: truncated for a in agents}, infos)

    def _index(self, agent: str, actions: Mapping[str, Any]) -> int:
        """Vocabulary index of `agent`'s action (an index, `Action` or text; absent: wait)."""
        if agent not in actions:
            return self.wait_index(agent)
        value = actions[agent]
        if type(value) is int or isinstance(value, np.integer):
            index = int(value)
            if not 0 <= index < len(self._vocab):
                raise CoopbenchError(
                    f"{agent}: action index {index} is out of range 0..{len(self._vocab) - 1}")
            return index
        return self.to_action(agent, value).index

    def _tick(self, joint: tuple):
        """Advance the real game by one tick."""
        self.state, info = self.mdp.get_state_transition(self.state, joint)
        sparse = info["sparse_reward_by_agent"]
        gained = sparse[0] + sparse[1]
        if gained:
            self.score += gained
            self.soups_delivered += sum(info["event_infos"]["soup_delivery"])
        shaped = info["shaped_reward_by_agent"]
        self._last_shaped = shaped
        self.shaped_score += shaped[0] + shaped[1]
        self.ticks += 1
        return self.state

    def _apply(self, joint: dict[str, Action]) -> tuple[float, list[Feedback]]:
        """Skills: run both agents' skills with the motion planner over game ticks."""
        chosen = [self._skills[joint[a].index] for a in self.possible_agents]
        before = self.score

        def over() -> bool:
            return self.ticks >= self.setting.horizon or (
                self.setting.end_on_success and self.soups_delivered >= self.setting.min_soups)

        runs, used = control.run_skills(self.kitchen, self.state, chosen, self._tick, over,
                                        max_ticks=self.max_skill_ticks)
        self.last_ticks = used
        self.last_runs = runs
        feedback = [Feedback(a, "execution", r.message)
                    for a, r in zip(self.possible_agents, runs, strict=True)
                    if r.status == "failed"]
        return self.score - before, feedback

    def _infos_now(self, feedback: list[Feedback], ticks: int) -> dict[str, dict]:
        fb = [f.to_json() for f in feedback] if feedback else []
        out = {}
        for i, a in enumerate(self.possible_agents):
            out[a] = {"action_mask": self.action_mask(a) if self.action_level == "skills"
                      else self._all_mask, "feedback": fb, "step": self.steps_taken,
                      "ticks": self.ticks, "step_ticks": ticks,
                      "soups_delivered": self.soups_delivered,
                      "shaped_reward": float(self._last_shaped[i])}
        return out

    def _infos(self) -> dict[str, dict]:  # used by reset()
        return self._infos_now([], 0)

    # -- observations ---------------------------------------------------------------------

    def _observation_space(self, agent: str) -> spaces.Space:
        if self.obs_type == "compact":
            return spaces.Box(0.0, 1.0, shape=(feat.N_FEATURES,), dtype=np.float32)
        if self.obs_type == "compact_soup":
            size = feat.N_FEATURES + len(feat.HELD_SOUP_NAMES)
            return spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        if self.obs_type == "lossless":
            shape = tuple(self.mdp.get_lossless_state_encoding_shape())
            return spaces.Box(0.0, np.inf, shape=shape, dtype=np.float32)
        shape = tuple(self.mdp.get_featurize_state_shape())
        return spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)

    def _observations_now(self) -> dict[str, np.ndarray]:
        if self.obs_type in ("compact", "compact_soup"):
            time = self.ticks / self.setting.horizon
            k, s = self.kitchen, self.state
            alice = feat.compact(k, s, self.soups_delivered, time, 0)
            obs = {"Alice": alice, "Bob": alice[feat.SWAP]}
            if self.obs_type == "compact_soup":
                for i, agent in enumerate(self.possible_agents):
                    obs[agent] = np.concatenate([obs[agent], feat.held_soups(s, i)])
            return obs
        if self.obs_type == "lossless":
            both = self.mdp.lossless_state_encoding(self.state, self.setting.horizon)
        else:
            if self._mlam is None:
                from coopbench.envs.overcooked.cache import medium_level_manager

                self._mlam = medium_level_manager(self.mdp)
            both = self.mdp.featurize_state(self.state, self._mlam)
        return {a: np.asarray(o, dtype=np.float32)
                for a, o in zip(self.possible_agents, both, strict=True)}

    def _observations(self) -> dict[str, np.ndarray]:  # used by reset()
        return self._observations_now()

    def observe(self, agent: str) -> np.ndarray:
        apply_recipes(self._recipes)
        return self._observations_now()[agent]

    def features(self) -> np.ndarray:
        """`features.FEATURE_NAMES` (39 numbers in [0, 1]), Alice in the `self` slots."""
        self._require_state()
        apply_recipes(self._recipes)
        return feat.compact(self.kitchen, self.state, self.soups_delivered,
                            self.ticks / self.setting.horizon, 0)

    # -- language -------------------------------------------------------------------------

    def task_prompt(self) -> str:
        return txt.task_prompt(self)

    def _require_state(self) -> None:
        if self.state is None:
            raise CoopbenchError("the env has not been reset yet; call reset() first")

    def describe(self, agent: str | None = None) -> str:
        self._require_state()
        if agent is not None and agent not in self.possible_agents:
            raise CoopbenchError(f"no agent named {agent!r}; agents are Alice and Bob")
        apply_recipes(self._recipes)
        return txt.describe(self, agent, self.view_radius)

    def verify(self, joint: Mapping[str, Action]) -> list[Feedback]:
        """Report plans that cannot work as intended before they run."""
        self._require_state()
        out = super().verify(joint)
        if self.action_level == "primitive":
            return out + self._verify_moves(joint)
        return out + self._verify_skills(joint)

    def _verify_moves(self, joint: Mapping[str, Action]) -> list[Feedback]:
        players = self.state.players
        pos = [p.position for p in players]
        nxt = []
        for i, a in enumerate(self.possible_agents):
            act = joint.get(a)
            move = OCAction.INDEX_TO_ACTION[act.index] if act is not None else OCAction.STAY
            cell = pos[i]
            if move not in (OCAction.STAY, OCAction.INTERACT):
                target = OCAction.move_in_direction(pos[i], move)
                cell = target if target in self.kitchen.valid_positions else pos[i]
            nxt.append(cell)
        names = self.possible_agents
        for i in (0, 1):
            if nxt[i] == pos[1 - i] and nxt[1 - i] == pos[1 - i]:
                return [Feedback(names[i], "collision",
                                 f"{names[i]} cannot move to {fmt(pos[1 - i])}: "
                                 f"{names[1 - i]} stays there.")]
        if nxt[0] == nxt[1]:
            who = names[0] if nxt[0] != pos[0] else names[1]
            return [Feedback(who, "collision",
                             f"Alice and Bob would both end at {fmt(nxt[0])}; neither moves. "
                             "Let one of them wait or go another way.")]
        if nxt[0] == pos[1] and nxt[1] == pos[0]:
            return [Feedback(names[1], "collision",
                             f"Alice at {fmt(pos[0])} and Bob at {fmt(pos[1])} would swap "
                             "cells head-on; agents cannot pass through each other.")]
        return []

    def _verify_skills(self, joint: Mapping[str, Action]) -> list[Feedback]:
        a, b = (joint.get(n) for n in self.possible_agents)
        if a is None or b is None or a.index != b.index:
            return []
        skill = self._skills[a.index]
        if skill.kind in ("place", "take"):
            c = self.kitchen.counters[skill.arg]
            return [Feedback("Bob", "constraint",
                             f"Alice and Bob both chose {skill.text!r}; counter {skill.arg} at "
                             f"{fmt(c)} holds one item, so only one of them can do it.")]
        return []

    def success(self) -> bool:
        return self.soups_delivered >= self.setting.min_soups

    # -- state and expert -----------------------------------------------------------------

    def _snapshot_state(self) -> Any:
        return (self.state.deepcopy(), self.ticks, self.soups_delivered, self.score,
                self.shaped_score)

    def _restore_state(self, snap: Any) -> None:
        state, self.ticks, self.soups_delivered, self.score, self.shaped_score = snap
        self.state = state.deepcopy()

    def expert_joint(self) -> dict[str, Action]:
        """The scripted greedy pair's next joint action at this env's action level."""
        self._require_state()
        apply_recipes(self._recipes)
        chosen = expert.choose(self.kitchen, self.state, self._skill_table())
        if self.action_level == "skills":
            return {a: self.action(a, self._skill_index[(s.kind, s.arg)])
                    for a, s in zip(self.possible_agents, chosen, strict=True)}
        intents = [control.intent_for(self.kitchen, self.state, s, i)
                   for i, s in enumerate(chosen)]
        joint = control.joint_actions(self.kitchen, self.state, intents)
        return {a: self.action(a, OCAction.ACTION_TO_INDEX[m])
                for a, m in zip(self.possible_agents, joint, strict=True)}

    def _skill_table(self) -> dict[tuple, sk.Skill]:
        if self.action_level == "skills":
            return {(s.kind, s.arg): s for s in self._skills}
        if not hasattr(self, "_expert_skills"):
            self._expert_skills = {(s.kind, s.arg): s for s in sk.vocabulary(self.kitchen)}
        return self._expert_skills

    def render(self) -> np.ndarray:
        """The current state as an RGB uint8 array (headless)."""
        self._require_state()
        from coopbench.envs.overcooked.render import render

        apply_recipes(self._recipes)
        return render(self.kitchen, self.state)
