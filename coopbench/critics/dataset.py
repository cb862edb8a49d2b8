"""Critic data: transitions (features, joint action, reward) with Monte-Carlo returns.

Three sources, mixed as configured (read-method.md §2.3):

- `expert`: the env's scripted expert, with `explore` chance per agent and step of a random
  legal action instead, and with `branch` chance per step of a counterfactual row: a random
  deviation from the expert's joint action, followed by the pure expert to the end and a
  rewind (`snapshot`/`restore`), so non-expert actions appear next to expert ones in the
  same states with exact returns;
- `reset`: a seeded reset, then `reset_steps` uniformly random joint steps to reach states normal
  play does not, then the exploring expert to the end (every step is recorded);
- `llm`: rollouts of an LLM planner (default central-v0, i.e. ReAd-J's data policy: physical
  verification, no critic); its LLM usage is recorded in the provenance, not in any NQ.

Targets are discounted returns-to-go G_t = r_t + γ G_{t+1} per episode (no bootstrapping:
an episode cut by the step cap ends its sum there). Saved as one `.npz` whose `meta` entry is
JSON provenance (env id, features version, action table, γ, sources, seeds).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.core.registry import load_entry_point
from coopbench.core.types import Action
from coopbench.critics.encoding import ActionTable

SOURCES = ("expert", "reset", "llm")
FORMAT = "coopbench-critic-data/1"


@dataclass
class CollectConfig:
    env_id: str
    expert_episodes: int = 30  # exploring-expert episodes
    reset_episodes: int = 60  # random-reset episodes
    llm_episodes: int = 0  # LLM-planner episodes
    llm: str = "sim:expert?noise=0.4"  # model spec for the llm source
    llm_planner: str = "central-v0"  # planner for the llm source
    explore: float = 0.05  # per agent and step: random legal action instead of the expert's
    branch: float = 0.3  # per step: also try a random deviation, then the pure expert (a
    #                      counterfactual row with a noise-free return; costs env steps)
    reset_steps: int = 0  # max random steps after a reset (0 = half the env's step cap)
    gamma: float = 0.95  # discount of the Monte-Carlo targets (read-method.md §9.2)
    horizon_scale: float = 3.0  # roll out past the step cap (x cap) when the env takes max_steps
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def make_collection_env(cfg: CollectConfig):
    """The env, with its step cap stretched so returns see rewards just past the cap.

    Without it a sparse-reward task whose expert needs most of the cap (Overcooked: 16 of 20
    steps) yields zero returns after almost every exploratory action, and the critic cannot
    tell a detour from a disaster.
    """
    env = envs.make(cfg.env_id, **cfg.env_kwargs)
    base_cap = env.max_steps
    if cfg.horizon_scale > 1:  # stretched from the configured cap, registered or given
        factory = load_entry_point(envs.registry.spec(cfg.env_id).entry_point)
        try:
            takes = "max_steps" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes = False
        if takes:
            cap = int(math.ceil(env.max_steps * cfg.horizon_scale))
            env = envs.make(cfg.env_id, **{**cfg.env_kwargs, "max_steps": cap})
    return env, base_cap


@dataclass
class Dataset:
    features: np.ndarray  # float32 [N, F]
    actions: np.ndarray  # int64 [N, n_agents] vocabulary indices, table order
    rewards: np.ndarray  # float32 [N]
    returns: np.ndarray  # float32 [N]
    episode: np.ndarray  # int64 [N]
    source: np.ndarray  # int64 [N], index into SOURCES
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def table(self) -> ActionTable:
        return ActionTable.from_json(self.meta["table"])

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            features=self.features,
            actions=self.actions,
            rewards=self.rewards,
            returns=self.returns,
            episode=self.episode,
            source=self.source,
            meta=np.array(json.dumps(self.meta)),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> Dataset:
        path = Path(path)
        if not path.exists():
            raise CoopbenchError(
                f"no critic dataset at {path} (make one with `coopbench critic collect`)"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT:
                    raise CoopbenchError(f"{path} is not a coopbench critic dataset")
                return cls(
                    data["features"],
                    data["actions"],
                    data["rewards"],
                    data["returns"],
                    data["episode"],
                    data["source"],
                    meta,
                )
        except (OSError, ValueError, KeyError) as exc:
            raise CoopbenchError(f"cannot read critic dataset {path}: {exc}") from None

    @classmethod
    def concat(cls, parts: list[Dataset]) -> Dataset:
        first = parts[0]
        for p in parts[1:]:
            if p.meta["table"] != first.meta["table"] or p.meta["env_id"] != first.meta["env_id"]:
                raise CoopbenchError("cannot merge datasets of different envs or vocabularies")
        offset, episodes = 0, []
        for p in parts:
            episodes.append(p.episode + offset)
            offset += int(p.episode.max(initial=-1)) + 1
        cat = np.concatenate
        return cls(
            cat([p.features for p in parts]),
            cat([p.actions for p in parts]),
            cat([p.rewards for p in parts]),
            cat([p.returns for p in parts]),
            cat(episodes),
            cat([p.source for p in parts]),
            dict(first.meta),
        )


def discounted_returns(rewards: list[float], gamma: float) -> list[float]:
    out, g = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def _random_joint(env, rng: np.random.Generator) -> dict[str, Action]:
    joint = {}
    for agent in env.agents:
        options = env.action_options(agent)
        joint[agent] = env.parse(agent, options[int(rng.integers(len(options)))])
    return joint


def _exploring_expert(env, rng: np.random.Generator, explore: float) -> dict[str, Action]:
    joint = dict(env.expert_joint())
    for agent in env.agents:
        if rng.random() < explore:
            options = env.action_options(agent)
            joint[agent] = env.parse(agent, options[int(rng.integers(len(options)))])
    return joint


def _deviation(env, rng: np.random.Generator, expert: dict[str, Action]) -> dict[str, Action]:
    """Each agent keeps the expert's action with probability 1/2; at least one deviates."""
    joint = dict(expert)
    agents = list(env.agents)
    forced = agents[int(rng.integers(len(agents)))]
    for agent in agents:
        if agent == forced or rng.random() < 0.5:
            others = [o for o in env.action_options(agent) if o != expert[agent].text]
            if others:
                joint[agent] = env.parse(agent, others[int(rng.integers(len(others)))])
    return joint


def _branch(env, rng: np.random.Generator, gamma: float) -> tuple[np.ndarray, dict, float]:
    """From the current state: a random deviation, then the pure expert to the end; rewind.

    The return of a deterministic expert continuation is exact, so the row teaches the
    critic what the deviation costs without the noise that later exploration would add.
    """
    snap = env.snapshot()
    feats = np.asarray(env.features(), dtype=np.float32)
    joint = _deviation(env, rng, env.expert_joint())
    rewards = []
    step_joint = joint
    while env.agents:
        _, r, _, _, _ = env.step(step_joint)
        rewards.append(float(next(iter(r.values()), 0.0)))
        if env.agents:
            step_joint = env.expert_joint()
    env.restore(snap)
    return feats, joint, discounted_returns(rewards, gamma)[0]


Progress = Callable[[str, int], None]


def collect(cfg: CollectConfig, progress: Progress | None = None) -> Dataset:
    """Roll out the configured sources and return the dataset with its provenance."""
    env, base_cap = make_collection_env(cfg)
    env.reset(seed=cfg.seed)
    table = ActionTable.from_env(env)
    rng = np.random.default_rng(cfg.seed)
    reset_cap = cfg.reset_steps or max(1, base_cap // 2)
    rows: dict[str, list] = {
        k: [] for k in ("features", "actions", "rewards", "returns", "episode", "source")
    }
    usage = {"calls": 0, "tokens_in": 0, "tokens_out": 0}
    planner = llm = None
    if cfg.llm_episodes:
        from coopbench import llm as llm_layer
        from coopbench import planners

        planner = planners.make(cfg.llm_planner)
        llm = llm_layer.make(cfg.llm)
    plan = [
        ("expert", cfg.expert_episodes),
        ("reset", cfg.reset_episodes),
        ("llm", cfg.llm_episodes),
    ]
    episode = 0
    for source, count in plan:
        for i in range(count):
            seed = cfg.seed * 100_003 + episode
            env.reset(seed=seed)
            random_steps = int(rng.integers(1, reset_cap + 1)) if source == "reset" else 0
            if planner is not None and source == "llm":
                planner.reset(env, llm, np.random.default_rng([seed, 1]))
            feats, acts, rews = [], [], []
            extra: list[tuple[np.ndarray, dict, float]] = []
            while env.agents:
                if source == "llm":
                    result = planner.act(env)
                    joint = result.joint
                    usage["calls"] += result.llm_queries
                    usage["tokens_in"] += result.usage.tokens_in
                    usage["tokens_out"] += result.usage.tokens_out
                elif len(feats) < random_steps:
                    joint = _random_joint(env, rng)
                else:
                    if cfg.branch > 0 and rng.random() < cfg.branch:
                        extra.append(_branch(env, rng, cfg.gamma))
                    joint = _exploring_expert(env, rng, cfg.explore)
                feats.append(np.asarray(env.features(), dtype=np.float32))
                acts.append(
                    [
                        joint[a].index if a in joint else env.wait_action(a).index
                        for a in table.agents
                    ]
                )
                _, rewards, _, _, _ = env.step(joint)
                rews.append(float(next(iter(rewards.values()), 0.0)))
            returns = discounted_returns(rews, cfg.gamma)
            for f, joint, g in extra:  # counterfactual rows (reward column: NaN, not observed)
                feats.append(f)
                acts.append([joint[a].index if a in joint else env.wait_action(a).index
                             for a in table.agents])
                rews.append(float("nan"))
                returns.append(g)
            rows["features"] += feats
            rows["actions"] += acts
            rows["rewards"] += rews
            rows["returns"] += returns
            rows["episode"] += [episode] * len(feats)
            rows["source"] += [SOURCES.index(source)] * len(feats)
            episode += 1
            if progress is not None:
                progress(source, i + 1)
    env.close()
    meta = {
        "format": FORMAT,
        "env_id": env.spec.id if getattr(env, "spec", None) else cfg.env_id,
        "features_version": str(env.features_version),
        "table": table.to_json(),
        "gamma": cfg.gamma,
        "config": asdict(cfg),
        "episodes": episode,
        "llm_usage": usage,
    }
    return Dataset(
        np.stack(rows["features"]).astype(np.float32),
        np.asarray(rows["actions"], dtype=np.int64),
        np.asarray(rows["rewards"], dtype=np.float32),
        np.asarray(rows["returns"], dtype=np.float32),
        np.asarray(rows["episode"], dtype=np.int64),
        np.asarray(rows["source"], dtype=np.int64),
        meta,
    )
