"""How well a critic ranks the expert's action above random ones on held-out states.

Held-out states come from fresh seeds (disjoint from collection seeds): a reset, a random
number of random joint steps, then the exploring expert, visiting states along the way. At
each state the expert's joint action is compared with a random legal joint action that
differs from it (ReAd-J's view: Q(s, a)), and, agent by agent in the critic's order, the
expert's action with a random one given the expert's predecessors (ReAd-S's view: the prefix
values). A tie counts as a miss. The expert's *acceptance* is how often its plan is within
ReAd's relative margin of the best of a few random legal plans: a critic that rejects the
expert's plan will make ReAd re-ask the LLM for a good plan (queries wasted, steps lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coopbench import envs
from coopbench.critics.critic import Critic


@dataclass
class EvalConfig:
    env_id: str
    states: int = 200  # held-out states to score
    seed: int = 10_000  # first evaluation seed (collection uses small seeds)
    explore: float = 0.2  # the exploring expert's random-action chance between states
    oracle: bool = False  # also roll both actions out (then the expert) for their true returns
    env_kwargs: dict = field(default_factory=dict)
    rivals: int = 8  # random legal joint plans the expert's plan must match (acceptance)
    accept_margin: float = 0.05  # ... to within this many return stds (ReAd's relative rule)


@dataclass
class EvalReport:
    env_id: str
    states: int
    joint_rank: float  # P(Q(s, expert) > Q(s, random joint))
    prefix_rank: dict[str, float]  # per agent, ReAd-S's local comparison
    mean_gap: float  # mean Q(s, expert) - Q(s, random)
    expert_truly_better: float | None = None  # oracle: P(true G(expert) > true G(random))
    agreement: float | None = None  # oracle: P(critic orders the pair as the true returns do)
    expert_acceptance: float = 0.0  # P(Q(s, expert) >= best of `rivals` random plans - margin)
    oracle_acceptance: float | None = None  # oracle: the same with true returns (the ceiling
    #   of expert_acceptance: where a random plan is truly better, no critic should accept)

    def to_json(self) -> dict:
        return self.__dict__.copy()


def _random_other(env, agent: str, avoid: str, rng: np.random.Generator):
    others = [o for o in env.action_options(agent) if o != avoid]
    if not others:
        return None
    return env.parse(agent, others[int(rng.integers(len(others)))])


def _random_joint(env, rng: np.random.Generator) -> dict:
    return {a: env.parse(a, (o := env.action_options(a))[int(rng.integers(len(o)))])
            for a in env.agents}


def true_return(env, joint, gamma: float) -> float:
    """Discounted return of `joint` then the pure expert to the end; the env is rewound."""
    snap = env.snapshot()
    g, discount, step = 0.0, 1.0, joint
    while env.agents:
        _, rewards, _, _, _ = env.step(step)
        g += discount * float(next(iter(rewards.values()), 0.0))
        discount *= gamma
        if env.agents:
            step = env.expert_joint()
    env.restore(snap)
    return g


def evaluate(critic: Critic, cfg: EvalConfig) -> EvalReport:
    env = envs.make(cfg.env_id, **cfg.env_kwargs)
    rng = np.random.default_rng(cfg.seed)
    wins = gaps = n = accepted = 0
    margin = cfg.accept_margin * critic.return_scale
    truly = agree = decided = truly_accepted = 0
    prefix_wins = {a: 0 for a in critic.agents}
    prefix_n = {a: 0 for a in critic.agents}
    episode = 0
    while n < cfg.states and episode < cfg.states * 4:
        env.reset(seed=cfg.seed + episode)
        episode += 1
        if episode == 1:
            critic.check_env(env)
        detour = int(rng.integers(0, max(1, env.max_steps // 2)))
        t = 0
        while env.agents and n < cfg.states:
            expert = env.expert_joint()
            feats = env.features()
            if t >= detour or rng.random() < 0.3:
                other = {a: _random_other(env, a, expert[a].text, rng) or expert[a]
                         for a in env.agents}
                if any(other[a].text != expert[a].text for a in env.agents):
                    q_exp, q_rnd = critic.q_many(feats, [expert, other])
                    wins += int(q_exp > q_rnd)
                    rivals = [_random_joint(env, rng) for _ in range(cfg.rivals)]
                    accepted += int(q_exp >= float(np.max(critic.q_many(feats, rivals))) - margin)
                    if cfg.oracle:
                        g_best = max(true_return(env, r, critic.gamma) for r in rivals)
                        truly_accepted += int(true_return(env, expert, critic.gamma)
                                              >= g_best - margin)
                    gaps += float(q_exp - q_rnd)
                    n += 1
                    if cfg.oracle:
                        g_exp = true_return(env, expert, critic.gamma)
                        g_rnd = true_return(env, other, critic.gamma)
                        truly += int(g_exp > g_rnd + 1e-9)
                        if abs(g_exp - g_rnd) > 1e-9:
                            decided += 1
                            agree += int((q_exp > q_rnd) == (g_exp > g_rnd))
                    prefix: dict = {}
                    for agent in critic.agents:
                        if agent not in env.agents:
                            continue
                        alt = _random_other(env, agent, expert[agent].text, rng)
                        if alt is not None:
                            q_e, q_r = critic.q_many(
                                feats, [{**prefix, agent: expert[agent]}, {**prefix, agent: alt}]
                            )
                            prefix_wins[agent] += int(q_e > q_r)
                            prefix_n[agent] += 1
                        prefix[agent] = expert[agent]
            if t < detour:
                joint = _random_joint(env, rng)
            else:
                joint = dict(expert)
                for a in env.agents:
                    if rng.random() < cfg.explore:
                        joint[a] = _random_other(env, a, "", rng) or joint[a]
            env.step(joint)
            t += 1
    env.close()
    return EvalReport(
        env_id=cfg.env_id,
        states=n,
        joint_rank=wins / max(n, 1),
        prefix_rank={a: prefix_wins[a] / max(prefix_n[a], 1) for a in critic.agents},
        mean_gap=gaps / max(n, 1),
        expert_acceptance=accepted / max(n, 1),
        expert_truly_better=truly / max(n, 1) if cfg.oracle else None,
        agreement=agree / max(decided, 1) if cfg.oracle else None,
        oracle_acceptance=truly_accepted / max(n, 1) if cfg.oracle else None,
    )
