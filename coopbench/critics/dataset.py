"""Critic data: transitions (features, joint action, reward) with Monte-Carlo returns.

Three sources, mixed as configured (read-method.md §2.3):

- `expert`: the env's scripted expert, with `explore` chance per agent and step of a random
  legal action instead, and with `branch` chance per step of a counterfactual row: a random
  deviation from the expert's joint action, followed by the pure expert to the end and a
  rewind (`snapshot`/`restore`), so non-expert actions appear next to expert ones in the
  same states with exact returns;
- `reset`: a seeded reset, then `reset_steps` uniformly random joint steps to reach states normal
  play does not, then the exploring expert to the end (every step is recorded);
- `llm`: rollouts of a planner with a model (default central-v0, i.e. ReAd-J's data policy:
  physical verification, no critic), any registered planner (one that needs a critic gets its
  own `auto` critic), with `epsilon` chance per step of a random legal joint action instead of
  the planner's (the planner is then not asked, so exploring costs no query); its LLM usage is
  recorded in the provenance, not in any NQ.

With `max_transitions` the counts become weights: episodes of the sources interleave in that
proportion until the dataset holds that many rows, and it is cut there, so the rows of a
smaller budget are the first rows of a larger one (same seed).

Targets are discounted returns-to-go G_t = r_t + γ G_{t+1} per episode (no bootstrapping:
an episode cut by the step cap ends its sum there). Saved as one `.npz` whose `meta` entry is
JSON provenance (env id, features version, action table, γ, the config, and `sources`: one
entry per source with its episodes and transitions; `Dataset.concat` keeps every part's).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterator
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
USAGE_KEYS = ("calls", "tokens_in", "tokens_out")  # per planner episode: [ep, *these, explored]


@dataclass
class CollectConfig:
    env_id: str
    expert_episodes: int = 30  # exploring-expert episodes
    reset_episodes: int = 60  # random-reset episodes
    llm_episodes: int = 0  # LLM-planner episodes
    llm: str = "sim:expert?noise=0.4"  # model spec for the llm source
    llm_planner: str = "central-v0"  # planner for the llm source
    epsilon: float = 0.0  # llm source, per step: a random legal joint action instead
    explore: float = 0.05  # per agent and step: random legal action instead of the expert's
    branch: float = 0.3  # per step: also try a random deviation, then the pure expert (a
    #                      counterfactual row with a noise-free return; costs env steps)
    reset_steps: int = 0  # max random steps after a reset (0 = half the env's step cap)
    gamma: float = 0.95  # discount of the Monte-Carlo targets (read-method.md §9.2)
    horizon_scale: float = 3.0  # roll out past the step cap (x cap) when the env takes max_steps
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_transitions: int = 0  # > 0: episode counts are weights; stop (and cut) at this many rows

    def check(self) -> None:
        """Bad values are one line before anything is rolled out."""
        for name in ("epsilon", "explore", "branch", "gamma"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise CoopbenchError(f"{name} must be in [0, 1] (got {value})")
        counts = (self.expert_episodes, self.reset_episodes, self.llm_episodes)
        if min(counts) < 0 or self.max_transitions < 0:
            raise CoopbenchError("episode counts and max_transitions must be >= 0")
        if not sum(counts):
            raise CoopbenchError("no episodes to collect: give a source at least one episode")


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
        meta = dict(first.meta)
        meta["sources"] = [s for p in parts for s in sources_of(p)]
        meta["episodes"] = sum(int(p.meta.get("episodes", 0)) for p in parts)
        meta.pop("llm_episode_usage", None)  # per-part episode ids: each part's totals stand
        return cls(
            cat([p.features for p in parts]),
            cat([p.actions for p in parts]),
            cat([p.rewards for p in parts]),
            cat([p.returns for p in parts]),
            cat(episodes),
            cat([p.source for p in parts]),
            meta,
        )

    def head(self, rows: int) -> Dataset:
        """The first `rows` rows (a data budget), provenance recounted. Returns were computed
        on whole episodes before the cut, and an episode's branch rows follow its recorded
        rows, so every kept branch row keeps the recorded state it branched from. The planner
        source's `llm_usage` and `explored_steps` become those of the kept episodes (whole:
        a collection stopped at `rows` finishes its last episode too), so a budget's cost is
        its own; a merged dataset's stay those of its whole collections."""
        cut = slice(0, rows)
        part = Dataset(self.features[cut], self.actions[cut], self.rewards[cut],
                       self.returns[cut], self.episode[cut], self.source[cut], dict(self.meta))
        kept = part.source
        part.meta["sources"] = [
            {**s, "transitions": int((kept == SOURCES.index(s["source"])).sum()),
             "episodes": len(np.unique(part.episode[kept == SOURCES.index(s["source"])]))}
            for s in sources_of(self)]
        part.meta["episodes"] = len(np.unique(part.episode))
        if "llm_episode_usage" in part.meta:
            _recount_llm_usage(part)
        if "config" in part.meta:  # the same rows as a collection stopped at `rows`
            part.meta["config"] = {**part.meta["config"], "max_transitions": rows}
        return part


def _recount_llm_usage(part: Dataset) -> None:
    """The planner source's model usage over the episodes `part` keeps."""
    kept = set(np.unique(part.episode[part.source == SOURCES.index("llm")]).tolist())
    spent = [u for u in part.meta["llm_episode_usage"] if u[0] in kept]
    part.meta["llm_episode_usage"] = spent
    usage, explored = _usage_of(spent)
    part.meta["llm_usage"] = usage
    for entry in part.meta["sources"]:
        if entry["source"] == "llm":
            entry["llm_usage"], entry["explored_steps"] = usage, explored


def _usage_of(spent: list[list[int]]) -> tuple[dict[str, int], int]:
    """Model usage and ε-steps summed over planner episodes' `[episode, *USAGE_KEYS, explored]`."""
    usage = {key: sum(u[i] for u in spent) for i, key in enumerate(USAGE_KEYS, start=1)}
    return usage, sum(u[-1] for u in spent)


def source_label(entry: dict[str, Any]) -> str:
    """A source as specs and manifests name it: `expert`, `reset`, `planner:<id>@<llm>`."""
    if entry["source"] != "llm":
        return str(entry["source"])
    return f"planner:{entry['planner']}@{entry['llm']}"


def sources_of(data: Dataset) -> list[dict[str, Any]]:
    """What the rows came from: one entry per source with episodes and transitions (datasets
    from before `sources` was recorded get theirs from the config and the source column)."""
    if "sources" in data.meta:
        return [dict(s) for s in data.meta["sources"]]
    return describe_sources(data.meta.get("config", {}), data.source, data.episode,
                            data.meta.get("llm_usage"))


def describe_sources(cfg: dict[str, Any], source: np.ndarray, episode: np.ndarray,
                     usage: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = []
    for index, name in enumerate(SOURCES):
        mask = source == index
        if not mask.any():
            continue
        entry: dict[str, Any] = {"source": name, "episodes": len(np.unique(episode[mask])),
                                 "transitions": int(mask.sum())}
        if name == "llm":
            entry.update(planner=cfg.get("llm_planner"), llm=cfg.get("llm"),
                         epsilon=cfg.get("epsilon", 0.0))
            if usage:
                entry["llm_usage"] = usage
        else:
            entry.update(explore=cfg.get("explore"), branch=cfg.get("branch"))
        entry["label"] = source_label(entry)
        out.append(entry)
    return out


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


Progress = Callable[[str, int, int], None]  # (source, its episodes so far, rows so far)


def _schedule(cfg: CollectConfig) -> Iterator[str]:
    """The source of each episode: the counts in order, or (with `max_transitions`) without
    end, interleaved in proportion to the counts (ties go to the earlier source)."""
    weights = [(name, count) for name, count in zip(
        SOURCES, (cfg.expert_episodes, cfg.reset_episodes, cfg.llm_episodes), strict=True)
        if count > 0]
    if not cfg.max_transitions:
        for name, count in weights:
            yield from [name] * count
        return
    done = dict.fromkeys((name for name, _ in weights), 0)
    while True:
        name = min(weights, key=lambda w: (done[w[0]] + 1) / w[1])[0]
        done[name] += 1
        yield name


@dataclass
class _Rollout:
    """The planner of the llm source, its model and critic (built once per collection)."""

    planner: Any
    llm: Any
    critic: Any
    planner_id: str


def _rollout_policy(cfg: CollectConfig) -> _Rollout:
    """The llm source's planner with its model and, for one that asks for a critic, the
    critic it would get in a run (resolved on the env's own configuration, not on the
    stretched collection horizon, so a shipped or cached one is found)."""
    from coopbench import llm as llm_layer
    from coopbench import planners

    spec = planners.registry.spec(cfg.llm_planner)  # an unknown id: one line
    planner = planners.make(spec.id)
    llm = llm_layer.make(cfg.llm) if spec.caps.needs_llm else None
    critic = None
    request = planner.critic_request()
    if request is not None:
        from coopbench.critics.resolve import locate

        base = envs.make(cfg.env_id, **cfg.env_kwargs)
        try:
            base.reset(seed=cfg.seed)
            critic = locate(base, request).critic
        finally:
            base.close()
    return _Rollout(planner, llm, critic, spec.id)


def collect(cfg: CollectConfig, progress: Progress | None = None) -> Dataset:
    """Roll out the configured sources and return the dataset with its provenance."""
    cfg.check()
    env, base_cap = make_collection_env(cfg)
    env.reset(seed=cfg.seed)
    table = ActionTable.from_env(env)
    rng = np.random.default_rng(cfg.seed)
    reset_cap = cfg.reset_steps or max(1, base_cap // 2)
    rows: dict[str, list] = {
        k: [] for k in ("features", "actions", "rewards", "returns", "episode", "source")
    }
    episode_usage: list[list[int]] = []  # per planner episode, so a budget's head is costed
    policy = _rollout_policy(cfg) if cfg.llm_episodes else None
    counts = dict.fromkeys(SOURCES, 0)
    episode = 0
    for source in _schedule(cfg):
        if cfg.max_transitions and len(rows["features"]) >= cfg.max_transitions:
            break
        seed = cfg.seed * 100_003 + episode
        env.reset(seed=seed)
        random_steps = int(rng.integers(1, reset_cap + 1)) if source == "reset" else 0
        if policy is not None and source == "llm":
            policy.planner.reset(env, policy.llm, np.random.default_rng([seed, 1]),
                                 policy.critic)
        feats, acts, rews = [], [], []
        extra: list[tuple[np.ndarray, dict, float]] = []
        calls = tokens_in = tokens_out = explored = 0
        while env.agents:
            if source == "llm" and cfg.epsilon > 0 and rng.random() < cfg.epsilon:
                joint = _random_joint(env, rng)  # ε-exploration: the planner is not asked
                explored += 1
            elif source == "llm":
                result = policy.planner.act(env)
                joint = result.joint
                calls += result.llm_queries
                tokens_in += result.usage.tokens_in
                tokens_out += result.usage.tokens_out
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
        if source == "llm":
            episode_usage.append([episode, calls, tokens_in, tokens_out, explored])
        episode += 1
        counts[source] += 1
        if progress is not None:
            progress(source, counts[source], len(rows["features"]))
    env.close()
    config = asdict(cfg)
    if policy is not None:
        config["llm_planner"] = policy.planner_id
    source_col = np.asarray(rows["source"], dtype=np.int64)
    episode_col = np.asarray(rows["episode"], dtype=np.int64)
    usage, explored = _usage_of(episode_usage)
    sources = describe_sources(config, source_col, episode_col, usage)
    for entry in sources:
        if entry["source"] == "llm":
            entry["explored_steps"] = explored
    meta = {
        "format": FORMAT,
        "env_id": env.spec.id if getattr(env, "spec", None) else cfg.env_id,
        "features_version": str(env.features_version),
        "table": table.to_json(),
        "gamma": cfg.gamma,
        "config": config,
        "episodes": episode,
        "llm_usage": usage,
        "sources": sources,
    }
    if policy is not None:
        meta["llm_episode_usage"] = episode_usage
    data = Dataset(
        np.stack(rows["features"]).astype(np.float32),
        np.asarray(rows["actions"], dtype=np.int64),
        np.asarray(rows["rewards"], dtype=np.float32),
        np.asarray(rows["returns"], dtype=np.float32),
        episode_col,
        source_col,
        meta,
    )
    if cfg.max_transitions and len(data) > cfg.max_transitions:
        data = data.head(cfg.max_transitions)
    return data
