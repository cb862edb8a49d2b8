"""Several copies of one env stepped in lock-step, as arrays shaped (envs, agents, ...).

Works through the generic contract only (PettingZoo `reset`/`step`, `infos[agent]
["action_mask"]`, `features()`), so every registered env trains the same way. Copies that
finish an episode are reset at once; the observation of the state they finished in is kept
(`final_obs`) because potential shaping needs Φ(s') of the last transition too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coopbench import envs
from coopbench.core.errors import CoopbenchError

#: Per-episode counters read from the final step's infos (first agent) into the summary.
EPISODE_INFO_KEYS = {"soups_delivered": "soups"}


def flat_obs(value: Any) -> np.ndarray:
    """An observation as one float32 vector."""
    return np.asarray(value, dtype=np.float32).reshape(-1)


@dataclass
class StepOut:
    obs: np.ndarray  # (n, A, D) observations to act on next (after auto-reset)
    mask: np.ndarray  # (n, A, nA) legal actions for `obs`
    team_reward: np.ndarray  # (n,) the env's team reward of this step
    extra_reward: np.ndarray  # (n, A) env-provided per-agent shaping (infos[a]["shaped_reward"])
    terminated: np.ndarray  # (n,) bool
    truncated: np.ndarray  # (n,) bool
    final_obs: np.ndarray  # (n, A, D) observations of the state reached by this step
    finished: list[dict[str, float]] = field(default_factory=list)  # episode summaries


class VecEnv:
    """`n` copies of `env_id`, seeded `seed, seed+1, ...` on their first reset."""

    def __init__(self, env_id: str, n: int, seed: int = 0, **env_kwargs: Any) -> None:
        if n < 1:
            raise CoopbenchError("the number of env copies must be at least 1")
        self.env_id = env_id
        self.envs = [envs.make(env_id, **env_kwargs) for _ in range(n)]
        first = self.envs[0]
        self.agents: list[str] = list(first.possible_agents)
        self.n = n
        self.seed = seed
        self.obs_dims = [int(np.prod(first.observation_space(a).shape)) for a in self.agents]
        self.n_actions = [int(first.action_space(a).n) for a in self.agents]
        self.obs_dim = max(self.obs_dims)
        self.max_actions = max(self.n_actions)
        self.features_version = str(getattr(first, "features_version", "1"))
        self._returns = np.zeros(n)
        self._lengths = np.zeros(n, dtype=np.int64)
        self._episodes_started = 0

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def _encode(self, obs: dict[str, Any], infos: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((self.n_agents, self.obs_dim), dtype=np.float32)
        mask = np.zeros((self.n_agents, self.max_actions), dtype=bool)
        for j, agent in enumerate(self.agents):
            vec = flat_obs(obs[agent])
            out[j, : vec.size] = vec
            info = infos.get(agent, {})
            legal = info.get("action_mask")
            if legal is None:
                mask[j, : self.n_actions[j]] = True
            else:
                mask[j, : self.n_actions[j]] = np.asarray(legal, dtype=bool)
        return out, mask

    def _reset_one(self, i: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        obs, infos = self.envs[i].reset(seed=seed)
        self._returns[i] = 0.0
        self._lengths[i] = 0
        return self._encode(obs, infos)

    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        """Reset every copy (copy i gets seed `seed + i`); returns (obs, mask)."""
        pairs = [self._reset_one(i, self.seed + i) for i in range(self.n)]
        self._episodes_started = self.n
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def step(self, actions: np.ndarray) -> StepOut:
        """Apply `actions` (n, A) of vocabulary indices; finished copies are reset."""
        n, a_count = self.n, self.n_agents
        obs = np.zeros((n, a_count, self.obs_dim), dtype=np.float32)
        final = np.zeros_like(obs)
        mask = np.zeros((n, a_count, self.max_actions), dtype=bool)
        team = np.zeros(n)
        extra = np.zeros((n, a_count))
        term = np.zeros(n, dtype=bool)
        trunc = np.zeros(n, dtype=bool)
        finished: list[dict[str, float]] = []
        for i, env in enumerate(self.envs):
            joint = {a: int(actions[i, j]) for j, a in enumerate(self.agents)}
            o, rewards, terminations, truncations, infos = env.step(joint)
            team[i] = float(np.mean([rewards[a] for a in self.agents]))
            for j, agent in enumerate(self.agents):
                extra[i, j] = float(infos.get(agent, {}).get("shaped_reward", 0.0))
            final[i], mask[i] = self._encode(o, infos)
            obs[i] = final[i]
            term[i] = any(terminations.values())
            trunc[i] = not term[i] and any(truncations.values())
            self._returns[i] += team[i]
            self._lengths[i] += 1
            if term[i] or trunc[i]:
                finished.append(self._summary(i, env, infos.get(self.agents[0], {})))
                obs[i], mask[i] = self._reset_one(i, None)
                self._episodes_started += 1
        return StepOut(obs, mask, team, extra, term, trunc, final, finished)

    def _summary(self, i: int, env: Any, info: dict[str, Any]) -> dict[str, float]:
        summary = {
            "return": float(self._returns[i]),
            "length": float(self._lengths[i]),
            "success": float(bool(env.success())),
        }
        for key, name in EPISODE_INFO_KEYS.items():
            if isinstance(info.get(key), (int, float, np.number)):
                summary[name] = float(info[key])
        metrics = getattr(env, "episode_metrics", None)
        if callable(metrics):  # optional hook: env-specific counts, e.g. soups delivered
            summary.update({k: float(v) for k, v in metrics().items()})
        return summary

    def close(self) -> None:
        for env in self.envs:
            env.close()
