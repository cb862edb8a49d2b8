"""Find the critic a ReAd planner should use: a path, a shipped checkpoint, or train one.

`critic="auto"` looks for a checkpoint shipped in `coopbench/critics/pretrained/`, then one
cached in `<cache root>/critics/` from an earlier on-demand run, and otherwise collects a small
expert + random-reset dataset and trains one (said on stderr; cached for next time).
`critic="train"` always trains anew; anything else is a checkpoint path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError
from coopbench.critics.critic import FORMAT, Critic
from coopbench.critics.encoding import ActionTable

PRETRAINED = Path(__file__).resolve().parent / "pretrained"


def checkpoint_name(env_id: str) -> str:
    return env_id.replace("/", "__") + ".pt"


def cache_path(env: Any) -> Path:
    from coopbench.llm.paths import cache_root

    stem = checkpoint_name(env.spec.id)[:-3]
    layout = FORMAT.rsplit("/", 1)[1]  # a new network layout must not load an old cache file
    tag = f"{ActionTable.from_env(env).digest()}-f{env.features_version}-c{layout}"
    return cache_root() / "critics" / f"{stem}-{tag}.pt"


def train_on_demand(env: Any, out: Path, seconds: float) -> Critic:
    from coopbench.critics.dataset import CollectConfig, collect
    from coopbench.critics.train import TrainConfig, train

    print(
        f"coopbench: no critic for {env.spec.id}; collecting expert + random-reset data and "
        f"training one (<= {seconds:.0f} s) into {out}",
        file=sys.stderr,
    )
    data = collect(CollectConfig(env.spec.id, expert_episodes=20, reset_episodes=40))
    critic, report = train(data, TrainConfig(max_seconds=seconds), out)
    print(
        f"coopbench: critic trained on {report.device} in {report.seconds:.0f} s "
        f"(val loss {report.val_loss:.4f})",
        file=sys.stderr,
    )
    return critic


def resolve_critic(
    env: Any, spec: str, device: str = "cpu", train_seconds: float = 120.0
) -> Critic:
    if spec not in ("auto", "train"):
        return Critic.load(spec, env, device)
    if getattr(env, "spec", None) is None:
        raise CoopbenchError(
            f"critic={spec!r} needs an env made with coopbench.envs.make; pass a checkpoint path"
        )
    if spec == "auto":
        shipped = PRETRAINED / checkpoint_name(env.spec.id)
        if shipped.exists():
            return Critic.load(shipped, env, device)
        cached = cache_path(env)
        if cached.exists():
            try:
                return Critic.load(cached, env, device)
            except CoopbenchError as exc:  # a cache is disposable: retrain rather than stop
                print(f"coopbench: ignoring cached critic ({exc})", file=sys.stderr)
    critic = train_on_demand(env, cache_path(env), train_seconds)
    critic.check_env(env)
    return critic
