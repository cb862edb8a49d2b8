"""Potential-based shaping (Ng, Harada & Russell 1999) from fitted per-agent potentials.

    r_i(t) = r(t) + λ·(γ·Φ_i(s_{t+1}) − Φ_i(s_t)),   with Φ_i(s_T) = 0 when s_T is terminal

so the optimal policies are those of the unshaped task. `shaped_returns` is the link to ReAd:
the critics regress on Monte-Carlo returns, and passing an episode's rewards and its
per-agent potentials gives the per-agent returns of the shaped rewards instead.

    from coopbench.credit import Shaper, shaped_returns
    shaper = Shaper.load("runs/credit/potential")          # checks env id and features version
    phi = shaper.episode_potentials(observations)          # (T+1, A) from per-step obs dicts
    targets = shaped_returns(team_rewards, phi, gamma=0.99, scale=shaper.scale)  # (T, A)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coopbench.core.errors import CoopbenchError
from coopbench.credit import potential as potential_mod
from coopbench.credit.vecenv import flat_obs
from coopbench.critics.dataset import CollectConfig, Dataset, make_collection_env


def shaping_term(phi: np.ndarray, phi_next: np.ndarray, gamma: float,
                 terminated: np.ndarray | bool = False) -> np.ndarray:
    """γ·Φ(s') − Φ(s), with Φ(s') = 0 where the episode terminated (not where it was cut)."""
    keep = 1.0 - np.asarray(terminated, dtype=np.float64)
    if np.ndim(keep) and np.ndim(phi) > np.ndim(keep):  # (n,) flags over (n, A) potentials
        keep = keep.reshape(keep.shape + (1,) * (np.ndim(phi) - np.ndim(keep)))
    return gamma * np.asarray(phi_next) * keep - np.asarray(phi)


def shaped_returns(rewards: Sequence[float] | np.ndarray, potentials: np.ndarray, gamma: float,
                   scale: float = 1.0, terminated: bool = True) -> np.ndarray:
    """Per-agent discounted returns G_i(t) of r(t) + scale·(γΦ_i(s_{t+1}) − Φ_i(s_t)).

    `rewards`: (T,) team rewards, or (T, A) per-agent rewards. `potentials`: (T+1, A), the
    potentials of s_0..s_T (or (T+1,) for one agent). `terminated`: the episode ended in a
    terminal state (Φ(s_T) counts as 0) rather than being cut at a step limit. Returns (T, A).
    """
    phi = np.asarray(potentials, dtype=np.float64)
    if phi.ndim == 1:
        phi = phi[:, None]
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim == 1:
        r = np.repeat(r[:, None], phi.shape[1], axis=1)
    if phi.shape[0] != r.shape[0] + 1:
        raise ValueError(f"need T+1 potentials for T rewards, got {phi.shape[0]} and {r.shape[0]}")
    done = np.zeros(r.shape[0], dtype=bool)
    done[-1] = terminated
    shaped = r + scale * shaping_term(phi[:-1], phi[1:], gamma, done)
    out = np.zeros_like(shaped)
    running = np.zeros(shaped.shape[1])
    for t in range(len(shaped) - 1, -1, -1):
        running = shaped[t] + gamma * running
        out[t] = running
    return out


class Shaper:
    """A fitted potential, ready to score observations (CPU or CUDA)."""

    def __init__(self, net: potential_mod.PotentialNet, meta: dict[str, Any], scale: float = 1.0,
                 device: str | torch.device = "cpu") -> None:
        self.net = net.to(device)
        self.meta = meta
        self.scale = scale
        self.device = torch.device(device)
        self.agents: list[str] = list(meta.get("agents", []))

    @classmethod
    def load(cls, path: Path | str, scale: float = 1.0, device: str = "cpu") -> Shaper:
        net, meta = potential_mod.load(path)
        return cls(net, meta, scale, device)

    def check(self, env_id: str, features_version: str, agents: list[str], obs_dim: int) -> None:
        potential_mod.check_compatible(self.meta, env_id, features_version, agents, obs_dim)

    def potentials(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Φ of observations shaped (..., A, D) -> (..., A), on this shaper's device."""
        with torch.no_grad():
            return self.net(torch.as_tensor(obs, dtype=torch.float32, device=self.device))

    def episode_potentials(self, observations: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(T+1, A) potentials from the per-step observation dicts s_0..s_T of one episode."""
        dim = self.net.obs_dim
        rows = np.zeros((len(observations), len(self.agents), dim), dtype=np.float32)
        for t, obs in enumerate(observations):
            for j, agent in enumerate(self.agents):
                vec = flat_obs(obs[agent])
                rows[t, j, : vec.size] = vec
        return self.potentials(rows).cpu().numpy().astype(np.float64)


def shape_returns(data: Dataset, potential: Path | str, scale: float = 1.0) -> Dataset:
    """The dataset with potential-shaped Monte-Carlo targets (LCA potentials, issue 8).

    The dataset keeps features, not per-agent observations, so each episode is replayed from
    its seed with its recorded actions (checked against the recorded features) to get the
    observations Φ_i needs. A recorded row's target becomes the mean over agents of
    `shaped_returns(rewards, Φ, γ, scale, terminated)`; a counterfactual row (its continuation
    is not recorded) gets G − scale·mean_i Φ_i(s_t), the same sum telescoped, its end counted
    as terminal. `meta["shaping"]` records the potential's path, sha256 and the scale.
    """
    shaper = Shaper.load(potential, scale=scale)
    pt = Path(potential) / potential_mod.CHECKPOINT if Path(potential).is_dir() else Path(potential)
    cfg = CollectConfig(**data.meta["config"])
    env, _ = make_collection_env(cfg)
    obs, _ = env.reset(seed=cfg.seed * 100_003)
    shaper.check(data.meta["env_id"], str(env.features_version), list(env.possible_agents),
                 int(flat_obs(obs[env.possible_agents[0]]).size))
    table = data.table
    gamma = float(data.meta["gamma"])
    returns = data.returns.astype(np.float64).copy()
    for episode in np.unique(data.episode):
        rows = np.flatnonzero(data.episode == episode)
        main = rows[~np.isnan(data.rewards[rows])]
        obs, _ = env.reset(seed=cfg.seed * 100_003 + int(episode))
        observations, states, terminated = [obs], [], False
        for row in main:
            feats = np.asarray(env.features(), dtype=np.float32)
            if not np.allclose(feats, data.features[row], atol=1e-5):
                raise CoopbenchError(f"episode {episode} of the dataset does not replay "
                                     "(env changed since collection?); collect it again")
            states.append(feats)
            joint = {a: env.parse(a, table.vocab[a][int(data.actions[row, j])])
                     for j, a in enumerate(table.agents) if a in env.agents}
            obs, _, terms, _, _ = env.step(joint)
            terminated = any(terms.values())
            observations.append(obs)
        phi = shaper.episode_potentials(observations)  # (T+1, A)
        shaped = shaped_returns(data.rewards[main], phi, gamma, scale, terminated)
        returns[main] = shaped.mean(axis=1)
        for row in rows[np.isnan(data.rewards[rows])]:
            t = next((i for i, s in enumerate(states)
                      if np.allclose(s, data.features[row], atol=1e-5)), None)
            if t is None:
                raise CoopbenchError(f"a counterfactual row of episode {episode} matches no "
                                     "replayed state; collect the dataset again")
            returns[row] = data.returns[row] - scale * phi[t].mean()
    env.close()
    meta = dict(data.meta)
    meta["shaping"] = {"potential": str(potential), "sha256": hashlib.sha256(
        pt.read_bytes()).hexdigest(), "scale": scale, "team_target": "mean over agents"}
    return Dataset(data.features, data.actions, data.rewards, returns.astype(np.float32),
                   data.episode, data.source, meta)
