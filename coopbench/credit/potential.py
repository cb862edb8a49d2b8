"""Potentials Φ_i(o_i): one small network per agent (or one shared, fed the agent's id).

Fitted with the confidence-weighted Bradley-Terry loss of "Navigating Noisy Feedback"
(arXiv 2410.17389), applied per agent as in LCA (arXiv 2502.03723):

    P(s' ≻ s) = σ(Φ_i(s') − Φ_i(s))
    L = −mean[ c·log P(s' ≻ s) + (1 − c)·log P(s ≻ s') ]

where c is the agreement rate of the K LLM answers. Inconsistent answers give c ≈ ½, whose
optimum is Φ_i(s') = Φ_i(s): noise flattens the potential instead of bending it. Potentials
are in Bradley-Terry logit units; the trainer multiplies them by its `--shaping-scale`.

A checkpoint (`potential.pt`, loadable with `torch.load(weights_only=True)`, plus a readable
`potential.json`) records the env id, the env's `features_version`, the observation size and
the agents, so a potential is never applied to an env whose encoding it was not fitted on.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import write_json_atomic
from coopbench.core.saved import load_torch, validated

CHECKPOINT = "potential.pt"
CHECKPOINT_META = "potential.json"
FORMAT = "coopbench-potential/1"


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two tanh layers; the output layer starts at zero so an untrained Φ is constant."""
    head = nn.Linear(hidden, outputs)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), head
    )


class PotentialNet(nn.Module):
    """Φ over observations shaped (..., A, D) -> (..., A)."""

    def __init__(self, obs_dim: int, n_agents: int, hidden: int = 64, shared: bool = False):
        super().__init__()
        self.obs_dim, self.n_agents, self.hidden, self.shared = obs_dim, n_agents, hidden, shared
        if shared:
            self.nets = nn.ModuleList([mlp(obs_dim + n_agents, hidden, 1)])
        else:
            self.nets = nn.ModuleList([mlp(obs_dim, hidden, 1) for _ in range(n_agents)])
        self.register_buffer("offset", torch.zeros(n_agents))
        self.register_buffer("input_mask", torch.ones(obs_dim))  # 0 = input ignored
        # Inputs are standardised with the fitted data's statistics (see `standardise`).
        self.register_buffer("input_mean", torch.zeros(obs_dim))
        self.register_buffer("input_std", torch.ones(obs_dim))

    def standardise(self, obs: torch.Tensor) -> None:
        """Centre and scale every input on `obs` (..., D).

        Why: progress can hide in an input that moves by a tiny step, such as Overcooked's
        delivered-soup count (1/20 per soup). The task cycles (a delivery empties the hands and
        the pot), so Φ can only keep rising across cycles through that input; unscaled, a
        small network puts the unavoidable drop somewhere else, at a rare transition.
        """
        flat = obs.reshape(-1, obs.shape[-1])
        std = flat.std(dim=0)
        self.input_mean.copy_(flat.mean(dim=0))
        self.input_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = (obs - self.input_mean) / self.input_std * self.input_mask
        if self.shared:
            ids = torch.eye(self.n_agents, dtype=obs.dtype, device=obs.device)
            ids = ids.expand(*obs.shape[:-2], self.n_agents, self.n_agents)
            out = self.nets[0](torch.cat([obs, ids], dim=-1)).squeeze(-1)
        else:
            out = torch.stack(
                [net(obs[..., j, :]).squeeze(-1) for j, net in enumerate(self.nets)], dim=-1
            )
        return out - self.offset


@dataclass
class FitConfig:
    """Bradley-Terry fitting; every field is recorded in the checkpoint."""

    hidden: int = 128
    shared: bool = False  # one network with an agent one-hot instead of one per agent
    steps: int = 12000  # gradient steps (minibatches), whatever the number of pairs
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05  # c -> c(1-ε) + ε/2: bounds Φ when every answer agrees
    holdout: float = 0.2  # pairs kept out: early stopping on their loss, and the report
    eval_every: int = 25  # steps between hold-out evaluations (the best state is kept)
    min_delta: float = 0.005  # a held-out loss gain below this (nats) counts as noise
    drop_clocks: bool = True  # ignore inputs that advance identically on every transition
    ignore_inputs: tuple[int, ...] = ()  # further observation indices to ignore
    standardise: bool = True  # inputs centred and scaled by the training pairs' statistics
    seed: int = 0


def bt_loss(phi: torch.Tensor, phi_next: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted Bradley-Terry loss; `conf` = c(s' ≻ s), all shaped alike."""
    return nn.functional.binary_cross_entropy_with_logits(phi_next - phi, conf)


def fit(arrays: dict[str, np.ndarray], config: FitConfig) -> tuple[PotentialNet, dict[str, Any]]:
    """Fit Φ on collected preferences; return the net (on CPU) and a report of the fit."""
    obs = torch.as_tensor(arrays["obs"], dtype=torch.float32)
    next_obs = torch.as_tensor(arrays["next_obs"], dtype=torch.float32)
    conf = torch.as_tensor(arrays["conf"], dtype=torch.float32)
    if obs.ndim != 3 or obs.shape != next_obs.shape or conf.shape != obs.shape[:2]:
        raise CoopbenchError("preferences arrays have inconsistent shapes")
    n, n_agents, dim = obs.shape
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(n, generator=gen)
    n_hold = int(round(n * config.holdout)) if n >= 10 else 0
    hold, train = order[:n_hold], order[n_hold:]
    net = PotentialNet(dim, n_agents, config.hidden, config.shared)
    ignored = sorted(set(config.ignore_inputs) | (set(clock_inputs(arrays))
                                                  if config.drop_clocks else set()))
    if any(not 0 <= i < dim for i in ignored):
        raise CoopbenchError(f"--ignore-inputs must lie in 0..{dim - 1}")
    net.input_mask[ignored] = 0.0
    if config.standardise:
        net.standardise(torch.cat([obs[train], next_obs[train]]))
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    eps = config.label_smoothing
    target = conf * (1 - eps) + eps / 2
    loss_value = float("nan")
    best = (_holdout_loss(net, obs, next_obs, target, hold), 0, copy.deepcopy(net.state_dict()))
    for step in range(1, config.steps + 1):
        idx = train[torch.randint(len(train), (min(config.batch_size, len(train)),),
                                  generator=gen)]
        loss = bt_loss(net(obs[idx]), net(next_obs[idx]), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_value = float(loss.detach())
        if n_hold and (step % config.eval_every == 0 or step == config.steps):
            held = _holdout_loss(net, obs, next_obs, target, hold)
            if held < best[0] - config.min_delta:
                best = (held, step, copy.deepcopy(net.state_dict()))
    if n_hold:  # early stopping: noise-only labels keep the (constant) start
        net.load_state_dict(best[2])
    net.eval()
    with torch.no_grad():
        all_phi = torch.cat([net(obs), net(next_obs)])
        net.offset.copy_(all_phi.mean(dim=0))
    report = {"pairs": n, "train_pairs": len(train), "holdout_pairs": n_hold,
              "ignored_inputs": ignored,
              "final_train_loss": loss_value, "best_holdout_loss": best[0],
              "best_step": best[1], **evaluate(net, arrays, hold.numpy())}
    return net, report


def clock_inputs(arrays: dict[str, np.ndarray]) -> list[int]:
    """Observation inputs that rise on every transition (e.g. Overcooked's `time`).

    A clock is a shortcut for Bradley-Terry: the later state is the better one far more often
    than not, so Φ would learn "later is better" and pay a bonus for merely living. Progress a
    ranker can see lies elsewhere. (With `--gaps`, a clock rises by different amounts.)
    """
    delta = (arrays["next_obs"] - arrays["obs"]).reshape(-1, arrays["obs"].shape[-1])
    if len(delta) < 2:
        return []
    return [int(i) for i in np.nonzero(np.all(delta > 1e-9, axis=0))[0]]


def _holdout_loss(net: PotentialNet, obs: torch.Tensor, next_obs: torch.Tensor,
                  target: torch.Tensor, hold: torch.Tensor) -> float:
    if not len(hold):
        return float("nan")
    with torch.no_grad():
        return float(bt_loss(net(obs[hold]), net(next_obs[hold]), target[hold]))


def evaluate(net: PotentialNet, arrays: dict[str, np.ndarray], idx: np.ndarray | None = None
             ) -> dict[str, Any]:
    """How Φ agrees with the labels and with the progress measure (if recorded)."""
    idx = np.arange(len(arrays["conf"])) if idx is None or len(idx) == 0 else idx
    with torch.no_grad():
        phi = net(torch.as_tensor(arrays["obs"][idx])).numpy()
        phi_next = net(torch.as_tensor(arrays["next_obs"][idx])).numpy()
    conf = arrays["conf"][idx]
    decided = np.abs(conf - 0.5) > 1e-9
    agree = ((phi_next - phi) > 0) == (conf > 0.5)
    states = np.concatenate([phi, phi_next])
    report: dict[str, Any] = {
        "label_accuracy": float(agree[decided].mean()) if decided.any() else None,
        "phi_std": [float(s) for s in states.std(axis=0)],
        "phi_range": [float(s) for s in np.ptp(states, axis=0)],
    }
    if "progress" in arrays:
        prog = np.concatenate([arrays["progress"][idx], arrays["next_progress"][idx]])
        report["spearman_with_progress"] = [
            spearman(states[:, j], prog[:, j]) for j in range(states.shape[1])
        ]
    return report


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation (average ranks for ties); None when either side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def save(net: PotentialNet, out_dir: Path | str, meta: dict[str, Any]) -> Path:
    """Write `potential.pt` and `potential.json` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "obs_dim": net.obs_dim,
        "n_agents": net.n_agents,
        "hidden": net.hidden,
        "shared": net.shared,
        **meta,
    }
    torch.save({"meta": json.dumps(record), "state_dict": net.state_dict()}, out / CHECKPOINT)
    write_json_atomic(out / CHECKPOINT_META, record)
    return out / CHECKPOINT


class _Checkpoint(BaseModel):
    """What `load` reads of `potential.pt`."""

    model_config = ConfigDict(extra="allow")
    meta: str  # JSON
    state_dict: dict[str, Any]


class _Meta(BaseModel):
    model_config = ConfigDict(extra="allow")
    format: str
    obs_dim: int
    n_agents: int
    hidden: int
    shared: bool


def _meta(text: str, path: Path, what: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise CoopbenchError(f"cannot read {what} {path}: its metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise CoopbenchError(f"cannot read {what} {path}: its metadata is not a JSON object")
    return meta


def load(path: Path | str) -> tuple[PotentialNet, dict[str, Any]]:
    """A potential checkpoint (a directory or its `potential.pt`), or a clear error."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CoopbenchError(f"no potential checkpoint at {path} (run `coopbench credit fit`)")
    what = "coopbench potential checkpoint"
    blob = validated(_Checkpoint, load_torch(path, what), path, what)
    meta = _meta(blob.meta, path, what)
    if meta.get("format") != FORMAT:
        raise CoopbenchError(f"{path} has format {meta.get('format')!r}, expected {FORMAT}")
    validated(_Meta, meta, path, what)
    net = PotentialNet(meta["obs_dim"], meta["n_agents"], meta["hidden"], meta["shared"])
    state = dict(blob.state_dict)
    for name in ("input_mean", "input_std"):  # checkpoints from before standardisation
        state.setdefault(name, getattr(net, name))
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        lines = str(exc).strip().splitlines()  # torch's last line names the tensor
        detail = lines[-1].strip() if lines else type(exc).__name__
        raise CoopbenchError(f"cannot read {what} {path}: {detail}") from None
    net.eval()
    return net, meta


def check_compatible(meta: dict[str, Any], env_id: str, features_version: str,
                     agents: list[str], obs_dim: int) -> None:
    """Refuse a potential fitted on another env or encoding, with the reason."""
    problems = []
    if meta.get("env_id") != env_id:
        problems.append(f"it was fitted on {meta.get('env_id')}, not {env_id}")
    if str(meta.get("features_version")) != str(features_version):
        problems.append(f"features version {meta.get('features_version')} != {features_version}")
    if list(meta.get("agents", [])) != list(agents):
        problems.append(f"agents {meta.get('agents')} != {agents}")
    if int(meta.get("obs_dim", -1)) != int(obs_dim):
        problems.append(f"observation size {meta.get('obs_dim')} != {obs_dim}")
    if problems:
        raise CoopbenchError("the potential does not fit this env: " + "; ".join(problems))


def fit_config_dict(config: FitConfig) -> dict[str, Any]:
    return asdict(config)
