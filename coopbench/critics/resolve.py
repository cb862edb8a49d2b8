"""Find the critic a ReAd planner should use: a path, a shipped checkpoint, or train one.

`critic="auto"` looks for a checkpoint shipped in `coopbench/critics/pretrained/` (only for an
env made with its registered defaults: a shipped critic never saw other kwargs), then one
cached in `<cache root>/critics/` from an earlier on-demand run, and otherwise collects a small
expert + random-reset dataset on exactly the env's configuration and trains one (said on
stderr; cached for next time). `critic="train"` always trains anew; anything else is a
checkpoint path.

On-demand training follows `ON_DEMAND` (data and ensemble sizes, seed) on the CPU with one
thread, so the same configuration trains the same critic on any machine as long as every
network's early stopping ends its training inside `train_seconds` (said on stderr when the
budget cut it short instead).

The cache key is everything that changes what a critic means: the env id, its kwargs in the
runner's canonical JSON form, the action vocabulary, the features and reward versions, the
network layout and the on-demand recipe. After on-demand training the critic's quality is
measured on held-out states (`quality`); below `MIN_JOINT_RANK` / `MIN_EXPERT_ACCEPTANCE` it
warns in one line, or with `strict` refuses the critic.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import write_json_atomic
from coopbench.core.types import CriticRequest
from coopbench.critics.critic import FORMAT, Critic
from coopbench.critics.encoding import ActionTable

PRETRAINED = Path(__file__).resolve().parent / "pretrained"
MIN_JOINT_RANK = 0.6  # expert's plan above a random one on held-out states
MIN_EXPERT_ACCEPTANCE = 0.5  # expert's plan within ReAd's margin of the best random rival
QUALITY_STATES = 100


@dataclass(frozen=True)
class OnDemand:
    """How ReAd trains a critic when none exists (part of the cache key: a change retrains)."""

    expert_episodes: int = 20
    reset_episodes: int = 40
    branch: float = 0.3  # counterfactual rows per step (see dataset.py)
    ensemble: int = 3  # networks averaged: fewer random plans wrongly scored above the expert's
    seed: int = 0


ON_DEMAND = OnDemand()


class CriticQualityError(CoopbenchError):
    """A critic below the quality floor while `strict_critic` is set."""


def checkpoint_name(env_id: str) -> str:
    return env_id.replace("/", "__") + ".pt"


def made_kwargs(env: Any) -> dict[str, Any]:
    """The kwargs `env` was made with (defaults included), as `envs.make` records them."""
    return dict(env.spec.kwargs)


def config_key(env: Any) -> str:
    """What a critic for `env` depends on, as one canonical JSON string."""
    parts = {
        "env": env.spec.id,
        "kwargs": made_kwargs(env),
        "vocab": ActionTable.from_env(env).digest(),
        "features": str(env.features_version),
        "reward": str(getattr(env, "reward_version", "1")),
        "layout": FORMAT.rsplit("/", 1)[1],
        "recipe": asdict(ON_DEMAND),
    }
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)


def cache_path(env: Any) -> Path:
    from coopbench.llm.paths import cache_root

    stem = checkpoint_name(env.spec.id)[:-3]
    digest = hashlib.sha256(config_key(env).encode()).hexdigest()[:16]
    return cache_root() / "critics" / f"{stem}-{digest}.pt"


def uses_defaults(env: Any) -> bool:
    from coopbench import envs

    return made_kwargs(env) == envs.registry.spec(env.spec.id).kwargs


def quality(critic: Critic, env: Any, states: int = QUALITY_STATES) -> dict[str, Any]:
    """Held-out figures of `critic` on `env`'s configuration, and whether they pass."""
    from coopbench.critics.evaluate import EvalConfig, evaluate

    return figures_of(evaluate(critic, EvalConfig(env.spec.id, states,
                                                  env_kwargs=made_kwargs(env))))


def figures_of(report: Any) -> dict[str, Any]:
    """An `EvalReport`'s quality figures, with whether they clear the floors."""
    ok = (report.joint_rank >= MIN_JOINT_RANK
          and report.expert_acceptance >= MIN_EXPERT_ACCEPTANCE)
    return {"joint_rank": report.joint_rank, "expert_acceptance": report.expert_acceptance,
            "states": report.states, "ok": ok}


def judge(figures: dict[str, Any], env_id: str, strict: bool) -> None:
    """One line when a critic is poor; an error instead when `strict`."""
    if figures["ok"]:
        return
    rank, accepted = figures["joint_rank"], figures["expert_acceptance"]
    line = (f"critic for {env_id} is poor: expert above random {rank:.0%} "
            f"(floor {MIN_JOINT_RANK:.0%}), expert's plan accepted {accepted:.0%}"
            f" (floor {MIN_EXPERT_ACCEPTANCE:.0%}) on {figures['states']} held-out states; "
            "train a bigger one with `coopbench critic collect/train`")
    if strict:
        raise CriticQualityError(line)
    print(f"coopbench: warning: {line}", file=sys.stderr)


def train_on_demand(env: Any, out: Path, seconds: float, recipe: OnDemand = ON_DEMAND) -> Critic:
    """Collect `recipe`'s data on exactly `env`'s configuration and train a critic into `out`."""
    from coopbench.critics.dataset import CollectConfig, collect
    from coopbench.critics.train import TrainConfig, train

    kwargs = made_kwargs(env)
    print(
        f"coopbench: no critic for {env.spec.id} {json.dumps(kwargs, sort_keys=True)}; "
        f"collecting expert + random-reset data and training one (<= {seconds:.0f} s) into {out}",
        file=sys.stderr,
    )
    data = collect(CollectConfig(env.spec.id, expert_episodes=recipe.expert_episodes,
                                 reset_episodes=recipe.reset_episodes, branch=recipe.branch,
                                 seed=recipe.seed, env_kwargs=kwargs))
    critic, report = train(data, TrainConfig(max_seconds=seconds, ensemble=recipe.ensemble,
                                             device="cpu", threads=1, seed=recipe.seed), out)
    print(
        f"coopbench: critic trained on {report.device} in {report.seconds:.0f} s "
        f"({recipe.ensemble} networks, {len(data)} transitions; val loss {report.val_loss:.4f})",
        file=sys.stderr,
    )
    if report.stopped == "time":
        print(
            f"coopbench: warning: critic training for {env.spec.id} stopped at its {seconds:.0f} s "
            "budget before the validation loss stopped improving, so another machine may train "
            "a different critic; raise the planner's train_seconds for a reproducible one",
            file=sys.stderr,
        )
    return critic


def quality_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".quality.json")


@dataclass
class ResolvedCritic:
    """A critic and where it came from, for the run manifest."""

    critic: Critic
    checkpoint: str
    origin: str  # "path" | "shipped" | "cached" | "trained"
    quality: dict[str, Any] | None = None  # held-out figures, where they were measured

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "origin": self.origin, "quality": self.quality,
                "data": data_of(self.critic.meta)}


def data_of(meta: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint was trained on: transitions and one entry per data source. Older
    checkpoints recorded only their collection config: their sources come from its episode
    counts, with the transitions unknown (None)."""
    dataset = meta.get("dataset", {})
    sources = dataset.get("sources")
    if sources is None:
        cfg = dataset.get("config", {})
        sources = []
        for name, key in (("expert", "expert_episodes"), ("reset", "reset_episodes"),
                          ("llm", "llm_episodes")):
            if cfg.get(key):
                entry: dict[str, Any] = {"source": name, "episodes": cfg[key],
                                         "transitions": None}
                if name == "llm":
                    entry.update(planner=cfg.get("llm_planner"), llm=cfg.get("llm"))
                sources.append(entry)
    return {"transitions": dataset.get("transitions"), "sources": sources}


def _saved_quality(checkpoint: Path) -> dict[str, Any] | None:
    path = quality_path(checkpoint)
    return json.loads(path.read_text()) if path.exists() else None


def locate(env: Any, request: CriticRequest) -> ResolvedCritic:
    """The critic `request` names for `env`, loaded or trained on demand, then checked."""
    return checked(find(env, request), env, request)


def checked(found: ResolvedCritic, env: Any, request: CriticRequest) -> ResolvedCritic:
    """Hold a critic to the floors. A strict request measures figures a checkpoint lacks; a
    poor shipped, cached or trained critic warns in one line (an explicit path warns only
    when strict: the user chose it, and workers load the runner's choice by path)."""
    if found.quality is None and request.strict:
        found.quality = quality(found.critic, env)
    if found.quality is not None and (request.strict or found.origin != "path"):
        judge(found.quality, env.spec.id if getattr(env, "spec", None) else found.checkpoint,
              request.strict)
    return found


def find(env: Any, request: CriticRequest) -> ResolvedCritic:
    """Where the critic comes from: a path, the shipped one, the cache, or training now."""
    source, device = request.source, request.device
    if source not in ("auto", "train"):
        return ResolvedCritic(Critic.load(source, env, device), str(source), "path",
                              _saved_quality(Path(source)))
    if getattr(env, "spec", None) is None:
        raise CoopbenchError(
            f"critic={source!r} needs an env made with coopbench.envs.make; pass a checkpoint path"
        )
    cached = cache_path(env)
    if source == "auto":
        shipped = PRETRAINED / checkpoint_name(env.spec.id)
        if shipped.exists() and uses_defaults(env):
            return ResolvedCritic(Critic.load(shipped, env, device), str(shipped), "shipped",
                                  _saved_quality(shipped))
        if cached.exists():
            try:
                critic = Critic.load(cached, env, device)
            except CoopbenchError as exc:  # a cache is disposable: retrain rather than stop
                print(f"coopbench: ignoring cached critic ({exc})", file=sys.stderr)
            else:
                return ResolvedCritic(critic, str(cached), "cached", _saved_quality(cached))
    critic = train_on_demand(env, cached, request.train_seconds)
    critic.check_env(env)
    figures = quality(critic, env)
    write_json_atomic(quality_path(cached), figures)
    return ResolvedCritic(critic, str(cached), "trained", figures)


def resolve_critic(
    env: Any, spec: str, device: str = "cpu", train_seconds: float = 120.0,
    strict: bool = False,
) -> Critic:
    """`locate` for callers that want the critic alone."""
    return locate(env, CriticRequest(spec, device, train_seconds, strict)).critic
