"""The environment contract: a PettingZoo `ParallelEnv` that also speaks language.

`LanguageEnv` is the protocol planners rely on. `VocabularyEnv` is a base class that
implements the bookkeeping every such env shares (fixed per-agent action vocabularies,
parsing, action masks, cached spaces, step counting, truncation, feedback from the last
step), so a concrete env writes only its dynamics and its text.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from coopbench.core.types import Action, Feedback, ParseError

if TYPE_CHECKING:
    from coopbench.core.registry import Spec

JointAction = Mapping[str, "Action | int | str"]


@runtime_checkable
class LanguageEnv(Protocol):
    """What planners, critics and trainers may call (see docs/adding-an-environment.md).

    `coopbench.envs.validate.check_contract` checks an env against it without a reset.
    """

    possible_agents: list[str]
    agents: list[str]
    max_steps: int  # the interaction-step cap; the runner may overwrite it (caps.max_steps)
    features_version: str
    steps_taken: int  # interaction steps since reset (prompts, transcripts, LLM call seeds)
    last_feedback: list[Feedback]  # what the last `step` reported, shown to planners next round
    spec: Spec  # set by `coopbench.envs.make`: the registered id, kwargs and caps

    def task_prompt(self) -> str: ...
    def describe(self, agent: str | None = None) -> str: ...
    def vocabulary(self, agent: str) -> list[str]: ...
    def action_options(self, agent: str) -> list[str]: ...
    def wait_action(self, agent: str) -> Action: ...
    def parse(self, agent: str, text: str) -> Action: ...
    def verify(self, joint: Mapping[str, Action]) -> list[Feedback]: ...
    def features(self) -> np.ndarray: ...
    def success(self) -> bool: ...
    def snapshot(self) -> Any: ...
    def restore(self, snap: Any) -> None: ...
    def expert_joint(self) -> dict[str, Action]: ...


def normalise_text(text: str) -> str:
    """Lower-case, strip punctuation at the ends, collapse whitespace and underscores-in-words."""
    text = text.strip().strip("`'\".,;:!").lower()
    return re.sub(r"\s+", " ", text)


class VocabularyEnv(ParallelEnv, ABC):
    """Base for envs whose agents each have a fixed, finite action vocabulary.

    Subclasses implement the abstract methods below. The PettingZoo action of an agent is
    the index of its action in `vocabulary(agent)`; `step` also accepts `Action` objects and
    action texts, which it parses.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "is_parallelizable": True}
    possible_agents: list[str]
    max_steps: int
    features_version: str = "1"

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.agents: list[str] = []
        self.steps_taken = 0
        self.last_feedback: list[Feedback] = []
        self.last_team_reward = 0.0
        self._vocab_index: dict[str, dict[str, int]] = {}
        self._spaces: dict[tuple[str, str], spaces.Space] = {}

    # -- to implement ---------------------------------------------------------------------

    @abstractmethod
    def vocabulary(self, agent: str) -> list[str]:
        """All actions this agent can ever take, as canonical text; fixed for the env's life."""

    @abstractmethod
    def legal_indices(self, agent: str) -> list[int]:
        """Indices into `vocabulary(agent)` of the actions legal in the current state."""

    @abstractmethod
    def wait_index(self, agent: str) -> int:
        """Index of this agent's WAIT (no-op) action."""

    @abstractmethod
    def _reset(self, seed: int | None, options: dict | None) -> None:
        """Build the initial state; draw randomness only from `self.np_random`."""

    @abstractmethod
    def _apply(self, joint: dict[str, Action]) -> tuple[float, list[Feedback]]:
        """Advance the state by one interaction step; return (team reward, feedback)."""

    @abstractmethod
    def observe(self, agent: str) -> np.ndarray:
        """This agent's numeric observation; must lie in `observation_space(agent)`."""

    @abstractmethod
    def _observation_space(self, agent: str) -> spaces.Space:
        """Built once per agent; `observation_space` caches it (PettingZoo checks identity)."""

    @abstractmethod
    def task_prompt(self) -> str: ...

    @abstractmethod
    def describe(self, agent: str | None = None) -> str: ...

    @abstractmethod
    def features(self) -> np.ndarray: ...

    @abstractmethod
    def success(self) -> bool: ...

    @abstractmethod
    def _snapshot_state(self) -> Any: ...

    @abstractmethod
    def _restore_state(self, state: Any) -> None: ...

    @abstractmethod
    def expert_joint(self) -> dict[str, Action]: ...

    def verify(self, joint: Mapping[str, Action]) -> list[Feedback]:
        """Physical verification before execution; the default accepts every legal plan."""
        return [
            Feedback(a, "constraint", f"{a}'s action {act.text!r} is not available now.")
            for a, act in joint.items()
            if act.index not in self.legal_indices(a)
        ]

    def text_aliases(self, agent: str) -> dict[str, str]:
        """Extra accepted spellings (normalised) -> canonical action text. Override to add."""
        return {}

    # -- provided -------------------------------------------------------------------------

    def action_space(self, agent: str) -> spaces.Discrete:
        key = ("action", agent)  # the same object every call: PettingZoo asserts identity
        if key not in self._spaces:
            self._spaces[key] = spaces.Discrete(len(self.vocabulary(agent)))
        return self._spaces[key]

    def observation_space(self, agent: str) -> spaces.Space:
        key = ("observation", agent)
        if key not in self._spaces:
            self._spaces[key] = self._observation_space(agent)
        return self._spaces[key]

    def action(self, agent: str, index: int) -> Action:
        return Action(agent, self.vocabulary(agent)[index], int(index))

    def action_options(self, agent: str) -> list[str]:
        vocab = self.vocabulary(agent)
        return [vocab[i] for i in self.legal_indices(agent)]

    def action_mask(self, agent: str) -> np.ndarray:
        mask = np.zeros(len(self.vocabulary(agent)), dtype=np.int8)
        mask[self.legal_indices(agent)] = 1
        return mask

    def wait_action(self, agent: str) -> Action:
        return self.action(agent, self.wait_index(agent))

    def parse(self, agent: str, text: str) -> Action:
        """Match `text` to one of the agent's actions (case-insensitive, light tolerance)."""
        if agent not in self.possible_agents:
            raise ParseError(
                f"There is no agent named {agent!r}; agents are {', '.join(self.possible_agents)}.",
                agent=agent,
            )
        index = self._lookup(agent, text)
        if index is None:
            raise ParseError(
                f"{agent}: {text.strip()!r} is not a valid action. "
                f"Choose one of: {', '.join(self.action_options(agent))}.",
                agent=agent,
            )
        if index not in self.legal_indices(agent):
            raise ParseError(
                f"{agent}: {self.vocabulary(agent)[index]!r} is not possible now. "
                f"Choose one of: {', '.join(self.action_options(agent))}.",
                agent=agent,
            )
        return self.action(agent, index)

    def _lookup(self, agent: str, text: str) -> int | None:
        if agent not in self._vocab_index:
            table = {normalise_text(t): i for i, t in enumerate(self.vocabulary(agent))}
            for alias, canonical in self.text_aliases(agent).items():
                table.setdefault(normalise_text(alias), table[normalise_text(canonical)])
            self._vocab_index[agent] = table
        return self._vocab_index[agent].get(normalise_text(text))

    def to_action(self, agent: str, value: Action | int | str | np.integer) -> Action:
        if isinstance(value, Action):
            return value
        if isinstance(value, (int, np.integer)):
            return self.action(agent, int(value))
        return self.parse(agent, value)

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None or not hasattr(self, "_np_random"):
            self._np_random, self._np_random_seed = _seeding(seed)
        self.agents = list(self.possible_agents)
        self.steps_taken = 0
        self.last_feedback = []
        self.last_team_reward = 0.0
        self._reset(seed, options)
        return self._observations(), self._infos()

    def step(self, actions: JointAction) -> tuple[dict, dict, dict, dict, dict]:
        joint = {a: self.to_action(a, actions[a]) for a in self.agents if a in actions}
        for agent in self.agents:  # an agent left out waits
            joint.setdefault(agent, self.wait_action(agent))
        reward, feedback = self._apply(joint)
        self.steps_taken += 1
        self.last_team_reward = float(reward)
        self.last_feedback = list(feedback)
        done = self.success()
        truncated = not done and self.steps_taken >= self.max_steps
        agents = list(self.agents)
        observations = self._observations()
        rewards = {a: float(reward) for a in agents}
        terminations = {a: done for a in agents}
        truncations = {a: truncated for a in agents}
        infos = self._infos()
        if done or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def snapshot(self) -> Any:
        return (self.steps_taken, list(self.agents), self._snapshot_state())

    def restore(self, snap: Any) -> None:
        self.steps_taken, agents, state = snap
        self.agents = list(agents)
        self._restore_state(state)

    @property
    def np_random(self) -> np.random.Generator:
        if not hasattr(self, "_np_random"):
            self._np_random, self._np_random_seed = _seeding(None)
        return self._np_random

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: self.observe(a) for a in self.possible_agents if a in self.agents}

    def _infos(self) -> dict[str, dict]:
        feedback = [f.to_json() for f in self.last_feedback]
        return {
            a: {"action_mask": self.action_mask(a), "feedback": feedback, "step": self.steps_taken}
            for a in self.agents
        }

    def close(self) -> None:
        pass


def _seeding(seed: int | None) -> tuple[np.random.Generator, int]:
    from gymnasium.utils import seeding

    return seeding.np_random(seed)
