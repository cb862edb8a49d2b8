"""Train a prefix critic on a dataset: MSE to Monte-Carlo returns, early stopping.

Every transition gives one row per agent prefix k = 0..n in the fixed agent order (agents
after the prefix masked), so one network yields ReAd-S's prefix values Q^{1:k}, ReAd-J's
Q(s, a) (k = n) and the state value V(s) (k = 0). MSE makes each row the conditional mean
over the data of the masked agents' actions: the marginalisation of read-method.md §2.1.
Validation is split by episode; the best validation epoch is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coopbench.core.errors import CoopbenchError
from coopbench.critics.critic import Critic, build_net, pick_device, save_checkpoint
from coopbench.critics.dataset import Dataset


@dataclass
class TrainConfig:
    encoder: str = "structured"  # "structured" (verb/object embeddings) | "text" (MiniLM)
    hidden: int = 256  # ReAd: 256
    layers: int = 2  # hidden layers (ReAd: 1; 2 fits our small feature vectors better)
    emb: int = 16  # token embedding size (structured encoder)
    lr: float = 1e-3  # ReAd: 1e-3, Adam
    batch_size: int = 256  # ReAd: 32 (our default trades it for CPU throughput)
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    patience: int = 15  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # share of episodes held out for validation
    balance: float = 0.5  # weight rows by (action frequency)^-balance: rare actions count more
    val_rows: str = "joint"  # early stopping on "joint" rows (Q(s, a)) or "all" prefix rows
    prefix_targets: str = "data"  # masked rows from every transition ("data") or only where
    #   the masked agents took the behaviour policy's action ("behaviour"; see below)
    max_seconds: float = 240.0  # wall-clock budget (the demo critic trains in < 5 min on CPU)
    device: str = "auto"  # auto | cpu | cuda[:N]
    threads: int = 1  # CPU threads (small MLPs: syncing threads costs more than it buys)
    ensemble: int = 1  # members trained on the same data (seeds seed..seed+n-1); Q = their mean
    seed: int = 0

    def validate(self) -> None:
        if self.encoder not in ("structured", "text"):
            raise CoopbenchError(f"--encoder {self.encoder!r}: use structured or text")
        if self.val_rows not in ("joint", "all"):
            raise CoopbenchError(f"val_rows {self.val_rows!r}: use joint or all")
        if self.prefix_targets not in ("data", "behaviour"):
            raise CoopbenchError(
                f"--prefix-targets {self.prefix_targets!r}: use data or behaviour"
            )
        if not 0.0 < self.val_fraction < 0.9:
            raise CoopbenchError("--val-fraction must be in (0, 0.9)")
        if self.ensemble < 1:
            raise CoopbenchError("--ensemble must be >= 1")
        if self.batch_size < 1 or self.epochs < 1:
            raise CoopbenchError("batch size and epochs must be >= 1")


@dataclass
class TrainReport:
    path: str
    device: str
    rows: int
    epochs: int
    best_epoch: int
    train_loss: float
    val_loss: float
    seconds: float
    samples_per_s: float
    stopped: str  # "early" | "epochs" | "time" (any member cut by the wall-clock budget)


def prefix_rows(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row -> transition index, masked actions) for every prefix k = 0..n of every row."""
    n_rows, n_agents = actions.shape
    index = np.repeat(np.arange(n_rows), n_agents + 1)
    masked = np.repeat(actions, n_agents + 1, axis=0).copy()
    k = np.tile(np.arange(n_agents + 1), n_rows)
    cols = np.arange(n_agents)
    masked[cols[None, :] >= k[:, None]] = -1
    return index, masked


def deviations(data: Dataset) -> np.ndarray:
    """bool [N, n_agents]: which agents of a counterfactual row left the behaviour action.

    A counterfactual (branch) row is recorded at a state the behaviour rollout also passed
    through (same episode, same features); an agent deviated where the two actions differ.
    Recorded rows are the behaviour policy's own, so nothing in them deviates.
    """
    out = np.zeros(data.actions.shape, dtype=bool)
    branch = np.flatnonzero(np.isnan(data.rewards))
    if not len(branch):
        return out
    seen: dict[tuple[int, bytes], int] = {}
    for i in np.flatnonzero(~np.isnan(data.rewards)):
        seen.setdefault((int(data.episode[i]), data.features[i].tobytes()), int(i))
    for i in branch:
        j = seen.get((int(data.episode[i]), data.features[i].tobytes()))
        if j is None:
            raise CoopbenchError("a counterfactual row matches no recorded state of its episode; "
                                 "collect the dataset again")
        out[i] = data.actions[i] != data.actions[j]
    return out


def keep_prefix_rows(index: np.ndarray, masked: np.ndarray, deviated: np.ndarray) -> np.ndarray:
    """`prefix_targets="behaviour"`: keep a prefix row unless a masked agent deviated there.

    Q^{1:k}(s, a^{1:k}) is then the return with agents k+1..n following the behaviour policy
    (read-method.md §1: the later agents' actions marginalised over the data policy), instead
    of a mixture that also holds the random deviations of counterfactual rows.
    """
    return ~((masked < 0) & deviated[index]).any(axis=1)


def action_weights(actions: torch.Tensor, power: float) -> torch.Tensor:
    """Per row: mean over present agents of count(agent, action)^-power, normalised to mean 1.

    An expert's data holds each useful action many times and each mistake a few times; without
    reweighting the network can fit the mistakes' values poorly and still have a low loss.
    """
    if power <= 0:
        return torch.ones(actions.shape[0])
    weights = torch.zeros(actions.shape[0])
    present = torch.zeros(actions.shape[0])
    for j in range(actions.shape[1]):
        col = actions[:, j].cpu()
        mask = col >= 0
        if not mask.any():
            continue
        _, inverse, counts = torch.unique(col[mask], return_inverse=True, return_counts=True)
        weights[mask] += counts[inverse].float() ** -power
        present[mask] += 1
    weights = torch.where(present > 0, weights / present.clamp(min=1), weights[present > 0].mean())
    return weights / weights.mean()


EpochCallback = Callable[[int, float, float], None]


def train(
    data: Dataset, cfg: TrainConfig, out: Path | str, on_epoch: EpochCallback | None = None
) -> tuple[Critic, TrainReport]:
    """Fit, keep the best validation epoch, save the checkpoint to `out`."""
    cfg.validate()
    if len(data) < 4:
        raise CoopbenchError(f"the dataset has only {len(data)} transitions; collect more")
    device = pick_device(cfg.device)
    if device.type == "cpu" and cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    episodes = np.unique(data.episode)
    n_val = max(1, int(round(len(episodes) * cfg.val_fraction)))
    val_eps = set(rng.permutation(episodes)[:n_val].tolist()) if len(episodes) > 1 else set()
    is_val = np.array([e in val_eps for e in data.episode])
    if is_val.all():
        is_val[:] = False

    meta: dict[str, Any] = {
        "env_id": data.meta["env_id"],
        "features_version": data.meta["features_version"],
        "table": data.meta["table"],
        "gamma": data.meta["gamma"],
        "feature_dim": int(data.features.shape[1]),
        "hparams": asdict(cfg),
        "dataset": {k: data.meta[k] for k in ("config", "episodes", "shaping") if k in data.meta},
    }
    net = build_net(meta)
    feats = torch.as_tensor(data.features)
    rets = torch.as_tensor(data.returns)
    train_idx = np.flatnonzero(~is_val)
    with torch.no_grad():
        net.feat_mean.copy_(feats[train_idx].mean(0))
        net.feat_std.copy_(feats[train_idx].std(0, unbiased=False).clamp(min=0.05))
        net.ret_mean.copy_(rets[train_idx].mean())
        net.ret_std.copy_(rets[train_idx].std(unbiased=False).clamp(min=1e-3))
    net.to(device)

    deviated = deviations(data) if cfg.prefix_targets == "behaviour" else None

    def tensors(mask: np.ndarray):
        idx, acts = prefix_rows(data.actions[mask])
        base = np.flatnonzero(mask)[idx]
        if deviated is not None:
            keep = keep_prefix_rows(base, acts, deviated)
            base, acts = base[keep], acts[keep]
        target = (rets[base] - net.ret_mean.cpu()) / net.ret_std.cpu()
        return (feats[base].to(device), torch.as_tensor(acts, device=device), target.to(device))

    tr_f, tr_a, tr_y = tensors(~is_val)
    tr_w = action_weights(tr_a, cfg.balance).to(device)
    va = tensors(is_val) if is_val.any() else (tr_f, tr_a, tr_y)
    if cfg.val_rows == "joint":  # masked-prefix targets carry irreducible noise: judge on Q(s, a)
        full = (va[1] >= 0).all(-1)
        va = (va[0][full], va[1][full], va[2][full])
    started, seen = time.perf_counter(), 0
    nets, outcomes = [], []
    for member in range(cfg.ensemble):
        other = net
        if member:  # same data, split and normalisation; new initialisation and batch order
            torch.manual_seed(cfg.seed + member)
            other = build_net(meta)
            with torch.no_grad():
                for name in ("feat_mean", "feat_std", "ret_mean", "ret_std"):
                    getattr(other, name).copy_(getattr(net, name))
            other.to(device)
        deadline = started + cfg.max_seconds * (member + 1) / cfg.ensemble
        outcome, count = _fit(other, cfg, (tr_f, tr_a, tr_y, tr_w), va, cfg.seed + member,
                              deadline, on_epoch)
        seen += count
        nets.append(other)
        outcomes.append(outcome)
    seconds = time.perf_counter() - started
    first = outcomes[0]
    meta["training"] = {
        "best_epoch": first["best_epoch"],
        "val_loss": float(np.mean([o["val_loss"] for o in outcomes])),
        "epochs": first["epochs"],
        "device": str(device),
        "stopped": first["stopped"],
        "members": len(nets),
        "time_capped": sum(o["stopped"] == "time" for o in outcomes),
    }
    path = save_checkpoint(out, nets, meta)
    report = TrainReport(
        str(path),
        str(device),
        int(tr_f.shape[0]),
        first["epochs"],
        first["best_epoch"],
        first["train_loss"],
        meta["training"]["val_loss"],
        seconds,
        seen / max(seconds, 1e-9),
        "time" if any(o["stopped"] == "time" for o in outcomes) else first["stopped"],
    )
    return Critic([n.cpu() for n in nets], meta, torch.device("cpu")), report


def _fit(net, cfg: TrainConfig, train_set, va, seed: int, deadline: float,
         on_epoch: EpochCallback | None) -> tuple[dict[str, Any], int]:
    """One member: Adam on weighted MSE, early stopping, best validation epoch restored."""
    tr_f, tr_a, tr_y, tr_w = train_set
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    best, best_state, best_epoch, bad = float("inf"), None, 0, 0
    seen, stopped, train_loss = 0, "epochs", float("nan")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        perm = torch.randperm(tr_f.shape[0], generator=gen).to(tr_f.device)
        total = 0.0
        for start in range(0, perm.shape[0], cfg.batch_size):
            b = perm[start : start + cfg.batch_size]
            loss = (tr_w[b] * (net(tr_f[b], tr_a[b]) - tr_y[b]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.shape[0]
            seen += b.shape[0]
        train_loss = total / tr_f.shape[0]
        net.eval()
        with torch.no_grad():
            val_loss = float(torch.nn.functional.mse_loss(net(va[0], va[1]), va[2]))
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
        if val_loss < best - 1e-6:
            best, best_epoch, bad = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                stopped = "early"
                break
        if time.perf_counter() > deadline:
            stopped = "time"
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    outcome = {"best_epoch": best_epoch, "val_loss": best, "epochs": epoch,
               "stopped": stopped, "train_loss": train_loss}
    return outcome, seen
