"""Train a prefix critic on a dataset: MSE to Monte-Carlo returns, early stopping.

Every transition gives one row per agent prefix k = 0..n in the fixed agent order (agents
after the prefix masked), so one network yields ReAd-S's prefix values Q^{1:k}, ReAd-J's
Q(s, a) (k = n) and the state value V(s) (k = 0). MSE makes each row the conditional mean
over the data of the masked agents' actions: the marginalisation of read-method.md §2.1.
Validation is split by episode; the best validation epoch is kept.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coopbench.core.device import choose, time_per_call
from coopbench.core.errors import CoopbenchError
from coopbench.critics.critic import Critic, build_net, pick_device, save_checkpoint
from coopbench.critics.dataset import Dataset, sources_of
from coopbench.critics.model import QStack

# Rows per step when `batch_size` is 0, per device (measured: docs/critics.md, "Speed")
BATCH_DEFAULTS = {"cpu": 256, "cuda": 1024}


@dataclass
class TrainConfig:
    encoder: str = "structured"  # "structured" (verb/object embeddings) | "text" (MiniLM)
    hidden: int = 256  # ReAd: 256
    layers: int = 2  # hidden layers (ReAd: 1; 2 fits our small feature vectors better)
    emb: int = 16  # token embedding size (structured encoder)
    lr: float = 1e-3  # ReAd: 1e-3, Adam
    batch_size: int = 0  # rows per step; 0 = the device's default (BATCH_DEFAULTS; ReAd: 32)
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    patience: int = 15  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # share of episodes held out for validation
    balance: float = 0.5  # weight rows by (action frequency)^-balance: rare actions count more
    val_rows: str = "joint"  # early stopping on "joint" rows (Q(s, a)) or "all" prefix rows
    prefix_targets: str = "data"  # masked rows from every transition ("data") or only where
    #   the masked agents took the behaviour policy's action ("behaviour"; see below)
    max_seconds: float = 240.0  # wall-clock budget (the demo critic trains in < 5 min on CPU)
    device: str = "auto"  # auto (the faster, measured: core/device.py) | cpu | cuda[:N]
    capture: str = "auto"  # CUDA graph of the training step: auto (on CUDA) | off
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
        if self.capture not in ("auto", "off"):
            raise CoopbenchError(f"capture {self.capture!r}: use auto or off")
        if self.batch_size < 0 or self.epochs < 1:
            raise CoopbenchError("batch size must be >= 0 (0: the device's default) and "
                                 "epochs >= 1")


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
    device_reason: str = ""  # why this device (`auto`: the measurement)


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


def batch_size_for(cfg: TrainConfig, device: torch.device) -> int:
    """`batch_size`, or the device's measured default when it is 0 (`BATCH_DEFAULTS`)."""
    return cfg.batch_size or BATCH_DEFAULTS[device.type]


@dataclass
class _Rows:
    """Training or validation rows, resident on one device: normalised features, slot-table
    rows of the (masked) actions, normalised targets and row weights."""

    x: torch.Tensor  # [R, F]
    rows: torch.Tensor  # [R, n_agents]
    y: torch.Tensor  # [R]
    w: torch.Tensor  # [R]

    def to(self, device: torch.device) -> _Rows:
        return _Rows(*(t.to(device) for t in (self.x, self.rows, self.y, self.w)))

    def __len__(self) -> int:
        return int(self.y.shape[0])


def train(
    data: Dataset, cfg: TrainConfig, out: Path | str, on_epoch: EpochCallback | None = None
) -> tuple[Critic, TrainReport]:
    """Fit, keep the best validation epoch, save the checkpoint to `out`."""
    cfg.validate()
    if len(data) < 4:
        raise CoopbenchError(f"the dataset has only {len(data)} transitions; collect more")
    if cfg.device != "auto":
        pick_device(cfg.device)  # a bad name fails before any work
    if cfg.threads > 0 and not cfg.device.startswith("cuda"):
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
        "dataset": {**{k: data.meta[k] for k in ("config", "episodes", "shaping")
                       if k in data.meta},
                    "transitions": len(data), "sources": sources_of(data)},
    }
    stack, tr, va = _prepare(data, cfg, meta, is_val)
    choice = choose(cfg.device, lambda dev: _probe(stack, cfg, tr, dev), pick_device)
    device = choice.device
    batch = batch_size_for(cfg, device)
    meta["hparams"]["batch_size"] = batch
    stack.to(device)
    started = time.perf_counter()
    fit = _Fit(stack, cfg, batch, tr.to(device), va.to(device), capture=_capture_wanted(cfg,
                                                                                       device))
    outcomes = fit.run(started + cfg.max_seconds, on_epoch)
    seconds = time.perf_counter() - started
    members = []
    for outcome in outcomes:
        member = build_net(meta)
        member.load_state_dict(outcome["state"], strict=False)
        members.append(member.eval())
    first = outcomes[0]
    meta["training"] = {
        "best_epoch": first["best_epoch"],
        "val_loss": float(np.mean([o["val_loss"] for o in outcomes])),
        "epochs": first["epochs"],
        "device": str(device),
        "device_choice": choice.to_json(),
        "captured": fit.captured,
        "stopped": first["stopped"],
        "members": len(members),
        "time_capped": sum(o["stopped"] == "time" for o in outcomes),
    }
    path = save_checkpoint(out, members, meta)
    report = TrainReport(
        str(path),
        str(device),
        len(tr),
        first["epochs"],
        first["best_epoch"],
        first["train_loss"],
        meta["training"]["val_loss"],
        seconds,
        fit.seen / max(seconds, 1e-9),
        "time" if any(o["stopped"] == "time" for o in outcomes) else first["stopped"],
        choice.reason,
    )
    return Critic(members, meta, torch.device("cpu")), report


def _prepare(data: Dataset, cfg: TrainConfig, meta: dict[str, Any],
             is_val: np.ndarray) -> tuple[QStack, _Rows, _Rows]:
    """The members (seeded initialisations, training-set normalisation) as one stack, and
    the training and validation rows, on the CPU."""
    nets = [build_net(meta)]
    feats = torch.as_tensor(data.features)
    rets = torch.as_tensor(data.returns)
    train_idx = np.flatnonzero(~is_val)
    net = nets[0]
    with torch.no_grad():
        net.feat_mean.copy_(feats[train_idx].mean(0))
        net.feat_std.copy_(feats[train_idx].std(0, unbiased=False).clamp(min=0.05))
        net.ret_mean.copy_(rets[train_idx].mean())
        net.ret_std.copy_(rets[train_idx].std(unbiased=False).clamp(min=1e-3))
    for member in range(1, cfg.ensemble):  # new initialisation; same split and normalisation
        torch.manual_seed(cfg.seed + member)
        other = build_net(meta)
        with torch.no_grad():
            for name in ("feat_mean", "feat_std", "ret_mean", "ret_std"):
                getattr(other, name).copy_(getattr(net, name))
        nets.append(other)
    stack = QStack(nets)

    deviated = deviations(data) if cfg.prefix_targets == "behaviour" else None
    normalised = (feats - net.feat_mean) / net.feat_std

    def rows_of(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx, acts = prefix_rows(data.actions[mask])
        base = np.flatnonzero(mask)[idx]
        if deviated is not None:
            keep = keep_prefix_rows(base, acts, deviated)
            base, acts = base[keep], acts[keep]
        target = (rets[base] - net.ret_mean) / net.ret_std
        return normalised[base], torch.as_tensor(acts), target

    tr_x, tr_a, tr_y = rows_of(~is_val)
    tr = _Rows(tr_x, stack.table_index(tr_a), tr_y, action_weights(tr_a, cfg.balance))
    va_x, va_a, va_y = rows_of(is_val) if is_val.any() else (tr_x, tr_a, tr_y)
    if cfg.val_rows == "joint":  # masked-prefix targets carry irreducible noise: judge on Q(s, a)
        full = (va_a >= 0).all(-1)
        va_x, va_a, va_y = va_x[full], va_a[full], va_y[full]
    return stack, tr, _Rows(va_x, stack.table_index(va_a), va_y, torch.ones_like(va_y))


def _capture_wanted(cfg: TrainConfig, device: torch.device) -> bool:
    """CUDA graphs only on CUDA (unless `capture` is off); elsewhere the step runs eagerly."""
    return device.type == "cuda" and cfg.capture != "off"


def _probe(stack: QStack, cfg: TrainConfig, rows: _Rows, device: torch.device) -> float:
    """Seconds per epoch on `device`: a few timed steps of a copy of the real network on a
    sample of the real rows, at that device's batch size (nothing of the run is touched)."""
    batch = batch_size_for(cfg, device)
    sample = min(len(rows), 4 * batch)
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(rows), generator=gen)[:sample]
        part = _Rows(rows.x[pick], rows.rows[pick], rows.y[pick], rows.w[pick]).to(device)
        clone = copy.deepcopy(stack).to(device)
        step = _Step(clone, cfg.lr, part, capture=False)
        idx = torch.randint(sample, (clone.size, min(batch, sample)), generator=gen).to(device)
        seconds = time_per_call(lambda: step(idx), device, calls=5)
    return seconds * -(-len(rows) // batch)


def record_graph(body: Callable[[], None], device: torch.device,
                 warmup: int = 3) -> Callable[[], None]:
    """`body` recorded as a CUDA graph on `device` (after `warmup` eager runs on a side
    stream, as torch's whole-network capture recipe does); returns the graph's replay."""
    with torch.cuda.device(device):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
    return graph.replay


class _Step:
    """One Adam step of the whole stack on row indices [E, B] (E members, B rows each).

    Eager by default. With `capture` (CUDA only) the first step is recorded as a CUDA graph
    and later steps of that size replay it: one launch instead of a few hundred
    kernels. Recording runs three warm-up steps, so the weights and Adam's state are put back
    afterwards; if recording fails the step stays eager (`captured` says which).
    """

    def __init__(self, stack: QStack, lr: float, rows: _Rows, capture: bool) -> None:
        self.stack, self.rows, self.lr = stack, rows, lr
        self.capture = capture
        self.opt = self.optimizer()
        self.replay: Callable[[], None] | None = None  # the recorded step, once recorded
        self.static_idx = torch.zeros((), dtype=torch.long)
        self.static_loss = torch.zeros(())
        self.recorded = 0  # graphs recorded (one more after each member leaves the stack)

    def optimizer(self) -> torch.optim.Optimizer:
        params = list(self.stack.parameters())
        if self.capture and params[0].is_cuda:  # replayable: Adam's step count on the GPU
            return torch.optim.Adam(params, lr=self.lr, capturable=True, foreach=True)
        return torch.optim.Adam(params, lr=self.lr)

    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        """Per-member weighted MSE [E] on rows `idx` [E, B]."""
        r, flat = self.rows, idx.flatten()
        x = r.x.index_select(0, flat).view(*idx.shape, -1)
        acts = r.rows.index_select(0, flat).view(*idx.shape, -1)
        y, w = r.y.index_select(0, flat).view(idx.shape), r.w.index_select(0, flat).view(idx.shape)
        return (w * (self.stack(x, acts) - y) ** 2).mean(1)

    def eager(self, idx: torch.Tensor) -> torch.Tensor:
        losses = self.losses(idx)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        return losses.detach()

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.capture and self.replay is None:
            self._record(idx)
        if self.replay is not None and idx.shape == self.static_idx.shape:
            self.static_idx.copy_(idx)
            self.replay()
            return self.static_loss.clone()
        return self.eager(idx)

    def _body(self) -> None:
        """The recorded step: reads `static_idx`, writes `static_loss` (fixed addresses)."""
        self.opt.zero_grad(set_to_none=True)
        losses = self.losses(self.static_idx)
        losses.sum().backward()
        self.opt.step()
        self.static_loss.copy_(losses.detach())

    def _record(self, idx: torch.Tensor) -> None:
        params = list(self.stack.parameters())
        saved = [p.detach().clone() for p in params]
        state = {p: {k: v.clone() for k, v in self.opt.state[p].items()}
                 for p in params if p in self.opt.state}
        self.static_idx = idx.clone()
        self.static_loss = torch.zeros(idx.shape[0], device=idx.device)
        try:
            self.replay = record_graph(self._body, idx.device)
            self.recorded += 1
        except (RuntimeError, AssertionError, ValueError):  # cannot record here: stay eager
            self.replay, self.capture = None, False
            if torch.cuda.is_available():
                torch.cuda.synchronize()
        with torch.no_grad():  # undo the warm-up steps
            for p, value in zip(params, saved, strict=True):
                p.copy_(value)
            for p in params:
                for key, value in self.opt.state.get(p, {}).items():
                    if p in state:
                        value.copy_(state[p][key])
                    else:
                        value.zero_()

    def shrink(self, keep: list[int]) -> None:
        """Drop the members not in `keep` (positions in the stack), Adam's state with them."""
        old = list(self.stack.parameters())
        states = [self.opt.state.get(p, {}) for p in old]
        self.stack.keep(keep)
        self.opt = self.optimizer()
        self.replay = None
        index = torch.tensor(keep, device=old[0].device)
        for p, st in zip(self.stack.parameters(), states, strict=True):
            if st:
                self.opt.state[p] = {k: v.clone() if v.dim() == 0 else v.index_select(0, index)
                                     for k, v in st.items()}


class _Fit:
    """All members side by side: Adam on weighted MSE, early stopping per member, each
    member's best validation epoch kept. A member that stops leaves the stack."""

    def __init__(self, stack: QStack, cfg: TrainConfig, batch: int, tr: _Rows, va: _Rows,
                 capture: bool) -> None:
        self.stack, self.cfg, self.batch, self.tr, self.va = stack, cfg, batch, tr, va
        self.step = _Step(stack, cfg.lr, tr, capture)
        self.seen = 0

    @property
    def captured(self) -> bool:
        return self.step.recorded > 0

    def run(self, deadline: float, on_epoch: EpochCallback | None) -> list[dict[str, Any]]:
        cfg, n, device = self.cfg, len(self.tr), self.tr.y.device
        active = list(range(self.stack.size))  # member ids, in stack order
        gens = [torch.Generator(device="cpu").manual_seed(cfg.seed + m) for m in active]
        best = [float("inf")] * len(active)
        bad = [0] * len(active)
        out: list[dict[str, Any]] = [
            {"best_epoch": 0, "val_loss": float("inf"), "epochs": 0, "stopped": "epochs",
             "train_loss": float("nan"), "state": self.stack.member_state(m)} for m in active]
        for epoch in range(1, cfg.epochs + 1):
            perms = torch.stack([torch.randperm(n, generator=gens[m]) for m in active])
            perms = perms.to(device)
            total = torch.zeros(len(active), device=device)
            for start in range(0, n, self.batch):
                idx = perms[:, start : start + self.batch]
                total += self.step(idx) * idx.shape[1]
            self.seen += n * len(active)
            with torch.no_grad():
                pred = self.stack(self.va.x, self.va.rows)
                val = ((pred - self.va.y) ** 2).mean(1)
            train_losses = (total / n).tolist()
            val_losses = val.tolist()
            if on_epoch is not None:
                on_epoch(epoch, float(np.mean(train_losses)), float(np.mean(val_losses)))
            timed_out = time.perf_counter() > deadline
            keep = []
            for pos, m in enumerate(active):
                rec = out[m]
                rec["epochs"], rec["train_loss"] = epoch, train_losses[pos]
                if val_losses[pos] < best[m] - 1e-6:
                    best[m], bad[m] = val_losses[pos], 0
                    rec.update(best_epoch=epoch, val_loss=val_losses[pos],
                               state=self.stack.member_state(pos))
                else:
                    bad[m] += 1
                    if bad[m] >= cfg.patience:
                        rec["stopped"] = "early"
                        continue
                if timed_out:
                    rec["stopped"] = "time"
                    continue
                keep.append(pos)
            if not keep:
                break
            if len(keep) < len(active):
                self.step.shrink(keep)
                active = [active[pos] for pos in keep]
        return out
