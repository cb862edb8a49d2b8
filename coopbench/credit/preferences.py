"""Preference collection: LLM rankings of consecutive state pairs, per agent, K times each.

For a transition (s, a, s') sampled from rollouts, each agent i is asked — from its own
perspective, with the team goal in words and its own action a_i — which of the two states is
better for the team goal. The two states are shown in a seeded random order (A/B) so that a
position bias does not become a preference. Every query is repeated `repeats` times (sample
index 0..K-1, so the cache keeps the K answers apart); the agreement rate is the label's
confidence: c(s' ≻ s) = (#"s' better" + ½·#"same") / K.

Results go to a directory: `preferences.npz` (the agents' observations of both states, the
confidences, and the progress measure of both states), `collect.json` (what was asked of
whom, and how many queries it took) and `llm_calls.jsonl`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.core.io import write_json_atomic
from coopbench.core.manifest import LLM_CALLS
from coopbench.credit.progress import measure_for
from coopbench.credit.vecenv import flat_obs
from coopbench.llm.base import LLM, Oracle

CHOICES = ["A", "B", "SAME"]
PREFERENCES = "preferences.npz"
META = "collect.json"
CALLS = LLM_CALLS


@dataclass
class CollectConfig:
    """How many pairs to label and how; every field is recorded in `collect.json`."""

    env_id: str
    pairs: int = 500  # transitions sampled (each is asked once per agent, `repeats` times)
    repeats: int = 5  # K: answers per (pair, agent); their agreement is the confidence
    explore: tuple[float, ...] = (0.5,)  # per agent and step: P(random legal action) vs the
    # scripted expert; several values: episodes cycle through them (a wider state coverage)
    episodes: int = 0  # rollout episodes to sample from (0: enough for `pairs`, at least 4)
    seed: int = 0
    temperature: float = 0.7  # >0 so a real model's K answers can differ
    concurrency: int = 8  # queries in flight at once (the LLM layer is thread-safe)
    tie_tolerance: float = 1e-6  # |progress difference| below this counts as "same"
    gaps: tuple[int, ...] = (1,)  # steps from s to the later state; one drawn per pair. 1 is
    # the paper's consecutive pair; longer gaps tell Φ how far apart states are (docs/credit.md)
    env_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Transition:
    snap: Any
    next_snap: Any
    obs: np.ndarray  # (A, D)
    next_obs: np.ndarray  # (A, D)
    actions: dict[str, str]
    episode: int = 0


def _pad(obs: dict[str, Any], agents: list[str], dim: int) -> np.ndarray:
    out = np.zeros((len(agents), dim), dtype=np.float32)
    for j, agent in enumerate(agents):
        vec = flat_obs(obs[agent])
        out[j, : vec.size] = vec
    return out


def rollouts(env: Any, config: CollectConfig, rng: np.random.Generator) -> list[Transition]:
    """Transitions of epsilon-expert rollouts (explore 1: uniformly random legal actions)."""
    agents = list(env.possible_agents)
    dim = max(int(np.prod(env.observation_space(a).shape)) for a in agents)
    out: list[Transition] = []
    episode = 0
    # A fixed count if asked; else until there are twice as many transitions as pairs.
    while (episode < config.episodes) if config.episodes else (
        len(out) < 2 * config.pairs or episode < 4
    ):
        episode += 1
        obs, _ = env.reset(seed=config.seed * 100_003 + episode)
        explore = config.explore[(episode - 1) % len(config.explore)]
        while env.agents:
            snap = env.snapshot()
            expert = env.expert_joint() if explore < 1.0 else {}
            joint = {}
            for agent in env.agents:
                if explore >= 1.0 or rng.random() < explore:
                    options = env.action_options(agent)
                    joint[agent] = env.parse(agent, options[int(rng.integers(len(options)))])
                else:
                    joint[agent] = expert[agent]
            next_obs, *_ = env.step(joint)
            out.append(Transition(
                snap, env.snapshot(), _pad(obs, agents, dim), _pad(next_obs, agents, dim),
                {a: act.text for a, act in joint.items()}, episode,
            ))
            obs = next_obs
    return out


def later(pool: list[Transition], index: int, gap: int) -> int:
    """Index of the transition ending `gap` steps after `pool[index]` starts (or the episode's
    last one, if it ends sooner)."""
    end = index
    while end + 1 < len(pool) and end + 1 - index < gap and \
            pool[end + 1].episode == pool[index].episode:
        end += 1
    return end


def ranking_messages(
    task: str, agent: str, first: str, second: str, action: str, steps: int = 1
) -> list[dict[str, str]]:
    """The ranking prompt: team goal, the agent's perspective, two states, a one-word answer."""
    system = (
        "You judge progress in a cooperative multi-agent task.\n"
        f"Task and team goal:\n{task}\n\n"
        f"Judge from {agent}'s perspective: which state is better for the team goal, "
        f"counting what {agent} contributes."
    )
    user = (
        f"State A:\n{first}\n\nState B:\n{second}\n\n"
        + (f"Between the two states {agent} took the action: {action}.\n" if steps == 1 else
           f"Between the two states {steps} steps passed; {agent} first took: {action}.\n")
        +
        "Which state is closer to completing the team goal? "
        "Answer with exactly one word: A, B, or SAME."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass
class Query:
    pair: int
    agent_index: int
    messages: list[dict[str, str]]
    oracle: Oracle
    next_is_a: bool  # True when s' was shown as A


def expert_answer(progress_a: float, progress_b: float, tolerance: float) -> str:
    """What a perfect judge answers for states shown as A and B."""
    if abs(progress_a - progress_b) <= tolerance:
        return "SAME"
    return "A" if progress_a > progress_b else "B"


def collect(config: CollectConfig, llm: LLM, out_dir: Path | str) -> dict[str, Any]:
    """Sample pairs, ask every agent's question K times, write the results; return the meta."""
    if config.pairs < 1 or config.repeats < 1:
        raise CoopbenchError("--pairs and --repeats must be at least 1")
    config.explore = tuple(float(p) for p in config.explore)
    config.gaps = tuple(int(g) for g in config.gaps)
    if not config.gaps or min(config.gaps) < 1:
        raise CoopbenchError("--gaps takes step counts of at least 1, e.g. 1 or 1,5,20")
    if not config.explore or not all(0.0 <= p <= 1.0 for p in config.explore):
        raise CoopbenchError("--explore takes probabilities in [0, 1]")
    out = Path(out_dir)
    env = envs.make(config.env_id, **config.env_kwargs)
    agents = list(env.possible_agents)
    rng = np.random.default_rng(config.seed)
    pool = rollouts(env, config, rng)
    picked = rng.choice(len(pool), size=min(config.pairs, len(pool)), replace=False)
    picked.sort()
    measure = measure_for(env, config.env_id)
    task = env.task_prompt()
    queries: list[Query] = []
    progress = np.zeros((len(picked), len(agents), 2), dtype=np.float64)
    gaps = config.gaps
    ends = []
    for p, index in enumerate(picked):
        # One gap: no draw, so a default collection keeps the random stream it always had.
        gap = gaps[0] if len(gaps) == 1 else gaps[int(rng.integers(len(gaps)))]
        tr, end = pool[int(index)], later(pool, int(index), gap)
        ends.append(end)
        texts = {}
        for side, snap in enumerate((tr.snap, pool[end].next_snap)):
            env.restore(snap)
            for j, agent in enumerate(agents):
                texts[side, agent] = env.describe(agent)
                progress[p, j, side] = measure(env, agent)
        for j, agent in enumerate(agents):
            next_is_a = bool(rng.random() < 0.5)
            order = (1, 0) if next_is_a else (0, 1)
            expert = expert_answer(progress[p, j, order[0]], progress[p, j, order[1]],
                                   config.tie_tolerance)
            messages = ranking_messages(task, agent, texts[order[0], agent],
                                        texts[order[1], agent], tr.actions.get(agent, "none"),
                                        steps=end - int(index) + 1)
            wrong = tuple(c for c in CHOICES if c != expert)
            # How clear-cut the verdict is, for a simulated judge that errs on close calls.
            margin = None if expert == "SAME" else abs(progress[p, j, 0] - progress[p, j, 1])
            queries.append(Query(p, j, messages, Oracle(expert, wrong, margin), next_is_a))
    answers = _ask(llm, queries, config)
    conf = np.full((len(picked), len(agents)), 0.5)
    agreement = np.zeros_like(conf)
    correct = np.zeros_like(conf)
    ties = np.zeros(conf.shape, dtype=bool)  # the true verdict is SAME
    parse_failures = 0
    for q, texts in zip(queries, answers, strict=True):
        votes = {c: 0 for c in CHOICES}
        for text in texts:
            word = text.strip().strip(".").upper()
            if word in votes:
                votes[word] += 1
            else:
                parse_failures += 1
        valid = sum(votes.values())
        next_votes = votes["A" if q.next_is_a else "B"] + 0.5 * votes["SAME"]
        conf[q.pair, q.agent_index] = next_votes / valid if valid else 0.5
        agreement[q.pair, q.agent_index] = max(votes.values()) / len(texts)
        correct[q.pair, q.agent_index] = votes[q.oracle.expert] / len(texts)
        ties[q.pair, q.agent_index] = q.oracle.expert == "SAME"
    obs = np.stack([pool[int(i)].obs for i in picked])
    next_obs = np.stack([pool[end].next_obs for end in ends])
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / PREFERENCES, obs=obs, next_obs=next_obs, conf=conf,
                        progress=progress[:, :, 0], next_progress=progress[:, :, 1])
    usage = getattr(llm, "usage", None)
    meta = {
        "config": asdict(config),
        "env_id": config.env_id,
        "features_version": str(getattr(env, "features_version", "1")),
        "agents": agents,
        "obs_dim": int(obs.shape[-1]),
        "llm": {"spec": llm.spec, "model_id": llm.model_id, "simulated": bool(llm.simulated)},
        "pairs": len(picked),
        "queries": len(queries) * config.repeats,
        "cache_hits": int(usage.cache_hits) if usage is not None else None,
        "tokens_in": int(usage.tokens_in) if usage is not None else None,
        "tokens_out": int(usage.tokens_out) if usage is not None else None,
        "cost_usd": float(usage.cost_usd) if usage is not None else None,
        "parse_failures": parse_failures,
        "mean_agreement": float(agreement.mean()),
        "mean_correct_answers": float(correct.mean()),
        # Split by the true verdict: a judge can err differently on ties and on real steps.
        "mean_correct_answers_same": _mean_or_none(correct[ties]),
        "mean_correct_answers_decided": _mean_or_none(correct[~ties]),
        "same_progress_fraction": float(ties.mean()),
        "progress_measure": getattr(measure, "__name__", "task_progress"),
    }
    meta = json.loads(json.dumps(meta))  # what a reader of collect.json will see
    write_json_atomic(out / META, meta)
    return meta


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _ask(llm: LLM, queries: list[Query], config: CollectConfig) -> list[list[str]]:
    """Every query K times, `concurrency` in flight; answers in query order."""
    jobs = [(qi, k) for qi in range(len(queries)) for k in range(config.repeats)]

    def one(job: tuple[int, int]) -> str:
        qi, k = job
        q = queries[qi]
        completion = llm.complete(
            q.messages, choices=CHOICES, temperature=config.temperature, max_tokens=4,
            seed=config.seed, sample=k, oracle=q.oracle,
            meta={"purpose": "credit-ranking", "pair": q.pair, "agent": q.agent_index,
                  "repeat": k},
        )
        return completion.text

    with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
        texts = list(pool.map(one, jobs))
    answers: list[list[str]] = [[] for _ in queries]
    for (qi, _), text in zip(jobs, texts, strict=True):
        answers[qi].append(text)
    return answers


def load(path: Path | str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a collection directory, or a clear error."""
    root = Path(path)
    if not (root / PREFERENCES).exists() or not (root / META).exists():
        raise CoopbenchError(f"{root} holds no preferences (run `coopbench credit collect`)")
    with np.load(root / PREFERENCES, allow_pickle=False) as data:  # data only, never code
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads((root / META).read_text())
