"""Independent PPO with parameter sharing, over vectorised env copies, in torch.

One actor-critic is shared by all agents and told which agent it acts for (a one-hot id), so
each agent keeps its own reward stream, value and advantage (per-agent credit) while learning
from everyone's data. Illegal actions are masked out of the policy. Reward modes:

- `sparse`: the env's team reward only;
- `hand`: plus the env's own per-agent shaping (`infos[agent]["shaped_reward"]`, e.g.
  Overcooked's hand-designed shaping), times `shaping_scale`;
- `llm`: plus `shaping_scale`·(γΦ_i(s') − Φ_i(s)) from a fitted potential checkpoint.

The run directory gets `train.json` (the config), `curves.jsonl`/`curves.csv` (one row per
update), `checkpoint.pt` (replaced atomically after every `checkpoint_every` updates) and
`curves.png`. `resume=True` continues from the checkpoint with the same config (only
`total_steps` may grow); episodes in flight at the interrupt are dropped, not resumed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from torch import nn

from coopbench.core.device import choose, time_per_call
from coopbench.core.errors import CoopbenchError
from coopbench.core.io import make_dir, write_json_atomic
from coopbench.core.manifest import write_manifest
from coopbench.core.saved import describe, load_torch, read_json, validated
from coopbench.credit.curves import CURVES_CSV, CurveLog, plot
from coopbench.credit.shaping import Shaper
from coopbench.credit.vecenv import VecEnv

REWARD_MODES = ("sparse", "hand", "llm")
CONFIG = "train.json"
CHECKPOINT = "checkpoint.pt"
DEVICE = "device.json"  # the device used and, for `auto`, the measurement that chose it


class _Checkpoint(BaseModel):
    """What a resume reads of `checkpoint.pt`, checked before use."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    update: int
    env_steps: int
    wall_s: float
    model: dict[str, Any]
    opt: dict[str, Any]
    torch_rng: torch.Tensor
    numpy_rng: str


@dataclass
class TrainConfig:
    """Every knob of a training run; saved to `train.json` and checked on resume."""

    env_id: str
    reward: str = "sparse"  # sparse | hand | llm
    potential: str = ""  # potential checkpoint directory (reward = llm)
    shaping_scale: float = 1.0  # multiplies the shaping term (hand or llm)
    shaping_gamma: float = 1.0  # γ' in γ'Φ(s') − Φ(s): 1 = the plain difference; < 0: PPO's γ
    shaping_anneal: int = 0  # env steps over which the shaping fades linearly to 0 (0: never)
    total_steps: int = 200_000  # environment steps (one joint step of one env copy = 1)
    num_envs: int = 8  # env copies stepped together
    num_steps: int = 128  # steps per copy per update
    lr: float = 3e-4
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 0.95
    update_epochs: int = 4
    minibatches: int = 4
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    reward_scale: float = 1.0  # rewards are multiplied by this before learning
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 1  # updates
    tensorboard: bool = True  # mirror curves to TensorBoard when it is installed
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.reward not in REWARD_MODES:
            raise CoopbenchError(f"unknown reward mode {self.reward!r} (known: sparse, hand, llm)")
        if self.reward == "llm" and not self.potential:
            raise CoopbenchError("--reward llm needs --potential <dir from `credit fit`>")
        for name in ("total_steps", "num_envs", "num_steps", "update_epochs", "minibatches",
                     "hidden", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise CoopbenchError(f"{name.replace('_', '-')} must be at least 1")
        if self.shaping_anneal < 0:
            raise CoopbenchError("shaping-anneal must be 0 (never) or a number of env steps")
        if (self.num_envs * self.num_steps) < self.minibatches:
            raise CoopbenchError("fewer samples per update than minibatches")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def updates(self) -> int:
        return max(1, -(-self.total_steps // self.steps_per_update))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return TypeAdapter(cls).validate_python({k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """A run's `train.json`, checked: a damaged file is one line naming it."""
        what = "training config"
        data = read_json(path, what)
        if not isinstance(data, dict):
            raise CoopbenchError(f"cannot read {what} {path}: not a JSON object")
        try:
            return cls.from_json(data)
        except ValidationError as exc:
            raise CoopbenchError(f"cannot read {what} {path}: {describe(exc)}") from None


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when torch sees a GPU, else CPU. Asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CoopbenchError("--device cuda asked for, but torch sees no CUDA GPU (use auto)")
    if name != "cpu" and not name.startswith("cuda"):
        raise CoopbenchError(f"unknown device {name!r} (auto, cpu, cuda)")
    return torch.device(name)


def _layer(inputs: int, outputs: int, gain: float) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """Shared MLP actor and critic; input = observation + agent one-hot."""

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.n_agents = n_agents
        inputs = obs_dim + n_agents
        root2 = float(np.sqrt(2))
        self.actor = nn.Sequential(
            _layer(inputs, hidden, root2), nn.Tanh(), _layer(hidden, hidden, root2), nn.Tanh(),
            _layer(hidden, n_actions, 0.01),
        )
        self.critic = nn.Sequential(
            _layer(inputs, hidden, root2), nn.Tanh(), _layer(hidden, hidden, root2), nn.Tanh(),
            _layer(hidden, 1, 1.0),
        )

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., A, D) -> (..., A, D + A) with each agent's one-hot id appended."""
        ids = torch.eye(self.n_agents, dtype=obs.dtype, device=obs.device)
        return torch.cat([obs, ids.expand(*obs.shape[:-2], *ids.shape)], dim=-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def dist(self, x: torch.Tensor, mask: torch.Tensor) -> torch.distributions.Categorical:
        logits = self.actor(x).masked_fill(~mask, -1e9)
        return torch.distributions.Categorical(logits=logits)


class Trainer:
    """One PPO run in one run directory."""

    def __init__(self, config: TrainConfig, run_dir: Path | str, *, resume: bool = False,
                 log: Callable[[str], None] = print) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.log = log
        resolve_device(config.device)  # a bad name fails before the run directory is made
        self._prepare_dir(resume)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.vec = VecEnv(config.env_id, config.num_envs, seed=config.seed, **config.env_kwargs)
        self.device_choice = choose(config.device, self._probe, resolve_device)
        self.device = self.device_choice.device
        write_json_atomic(self.run_dir / DEVICE, {
            **self.device_choice.to_json(),
            "probe": "seconds per update: policy steps, GAE and PPO minibatches at this run's "
                     "sizes (env stepping is the same on every device and left out)"})
        self.shaper: Shaper | None = None
        if config.reward == "llm":
            self.shaper = Shaper.load(config.potential, config.shaping_scale, self.device)
            self.shaper.check(config.env_id, self.vec.features_version, self.vec.agents,
                              self.vec.obs_dim)
        self.model = ActorCritic(self.vec.obs_dim, self.vec.n_agents, self.vec.max_actions,
                                 config.hidden).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, eps=1e-5)
        self.update = 0
        self.env_steps = 0
        self.wall_s = 0.0
        self.curves = CurveLog(self.run_dir, tensorboard=config.tensorboard)
        if resume:
            self._load_checkpoint()

    def _probe(self, device: torch.device) -> float:
        """Seconds per update on `device` for this run's sizes, from a throwaway model: the
        rollout's per-step policy work and host<->device copies, GAE, and the minibatches."""
        cfg, vec = self.config, self.vec
        model = ActorCritic(vec.obs_dim, vec.n_agents, vec.max_actions, cfg.hidden).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-5)
        obs_np = np.zeros((cfg.num_envs, vec.n_agents, vec.obs_dim), dtype=np.float32)
        mask_np = np.ones((cfg.num_envs, vec.n_agents, vec.max_actions), dtype=bool)
        flags = np.zeros(cfg.num_envs, dtype=np.float32)

        def act() -> None:
            x = model.inputs(torch.as_tensor(obs_np, device=device))
            with torch.no_grad():
                dist = model.dist(x, torch.as_tensor(mask_np, device=device))
                action = dist.sample()
                model.value(x)
                dist.log_prob(action)
            action.cpu().numpy()
            torch.as_tensor(flags, device=device)  # the step's rewards and done flags
            torch.as_tensor(flags, device=device)

        shape = (cfg.num_steps, cfg.num_envs, vec.n_agents)
        zeros = torch.zeros(shape, device=device)
        size = max(1, cfg.num_envs * cfg.num_steps * vec.n_agents // cfg.minibatches)
        x = torch.zeros((size, vec.obs_dim + vec.n_agents), device=device)
        mask = torch.ones((size, vec.max_actions), dtype=torch.bool, device=device)
        acts = torch.zeros(size, dtype=torch.long, device=device)
        adv, ret = torch.zeros(size, device=device), torch.zeros(size, device=device)

        def learn() -> None:
            dist = model.dist(x, mask)
            ratio = (dist.log_prob(acts) - dist.log_prob(acts).detach()).exp()
            loss = -(adv * ratio).mean() + 0.5 * (model.value(x) - ret).pow(2).mean() \
                - cfg.ent_coef * dist.entropy().mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            for _ in range(4):  # the statistics read back per minibatch
                float(loss.detach())

        per_step = time_per_call(act, device, calls=20)
        gae = time_per_call(lambda: self._gae(zeros, zeros, zeros, zeros[0]), device, calls=2)
        per_minibatch = time_per_call(learn, device, calls=5)
        return (cfg.num_steps * per_step + gae
                + cfg.update_epochs * cfg.minibatches * per_minibatch)

    # -- run directory ----------------------------------------------------------------------

    def _prepare_dir(self, resume: bool) -> None:
        path = self.run_dir / CONFIG
        if resume:
            if not path.exists() or not (self.run_dir / CHECKPOINT).exists():
                raise CoopbenchError(f"cannot resume: no checkpoint in {self.run_dir}")
            saved = asdict(TrainConfig.load(path))
            mine = asdict(self.config)
            diff = [k for k in mine if k != "total_steps" and saved[k] != mine[k]]
            if diff:
                raise CoopbenchError(
                    f"cannot resume {self.run_dir}: options differ from the saved run ("
                    + ", ".join(f"{k}: {saved.get(k)!r} -> {mine[k]!r}" for k in diff) + ")"
                )
        elif (self.run_dir / CHECKPOINT).exists():
            raise CoopbenchError(
                f"{self.run_dir} already holds a training run; pass --resume or a new --out"
            )
        make_dir(self.run_dir)
        write_json_atomic(path, asdict(self.config))
        write_manifest(self.run_dir, {"command": "credit train", "config": asdict(self.config)})

    def _save_checkpoint(self) -> None:
        blob = {
            "config": json.dumps(asdict(self.config)),
            "update": self.update,
            "env_steps": self.env_steps,
            "wall_s": self.wall_s,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
        }
        tmp = self.run_dir / f".{CHECKPOINT}.tmp"
        torch.save(blob, tmp)
        os.replace(tmp, self.run_dir / CHECKPOINT)

    def _load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        what = "training checkpoint"
        blob = validated(_Checkpoint, load_torch(path, what, self.device), path, what)
        try:
            self.model.load_state_dict(blob.model)
            self.opt.load_state_dict(blob.opt)
            torch.set_rng_state(blob.torch_rng.cpu())
            self.rng.bit_generator.state = json.loads(blob.numpy_rng)
        except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as exc:
            lines = str(exc).strip().splitlines()  # torch's last line names the tensor
            detail = lines[-1].strip() if lines else type(exc).__name__
            raise CoopbenchError(f"cannot resume from {path}: {detail}") from None
        self.update, self.env_steps, self.wall_s = blob.update, blob.env_steps, blob.wall_s
        self.curves.truncate_after(self.update)
        self.log(f"resumed from update {self.update} ({self.env_steps} env steps)")

    # -- training -----------------------------------------------------------------------------

    def train(self, on_update: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Run until `total_steps`; call `on_update(row)` after each update is saved."""
        cfg, dev = self.config, self.device
        self.log(f"training {cfg.env_id} · reward {cfg.reward} · device {dev.type}"
                 + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
                 + f" · {self.device_choice.reason}")
        if self.update > 0:  # fresh episodes after a resume, seeded by where we are
            self.vec.seed = cfg.seed + 7919 * self.update
        obs_np, mask_np = self.vec.reset()
        obs = torch.as_tensor(obs_np, device=dev)
        mask = torch.as_tensor(mask_np, device=dev)
        phi = self._phi(obs)
        shape = (cfg.num_steps, cfg.num_envs, self.vec.n_agents)
        buf_obs = torch.zeros((*shape, self.vec.obs_dim + self.vec.n_agents), device=dev)
        buf_mask = torch.zeros((*shape, self.vec.max_actions), dtype=torch.bool, device=dev)
        buf_act = torch.zeros(shape, dtype=torch.long, device=dev)
        buf_logp = torch.zeros(shape, device=dev)
        buf_rew = torch.zeros(shape, device=dev)
        buf_done = torch.zeros(shape, device=dev)
        buf_val = torch.zeros(shape, device=dev)
        while self.update < cfg.updates:
            start = time.perf_counter()
            if cfg.anneal_lr:
                self.opt.param_groups[0]["lr"] = cfg.lr * (1 - self.update / cfg.updates)
            finished: list[dict[str, float]] = []
            shaping_sum = 0.0
            for t in range(cfg.num_steps):
                x = self.model.inputs(obs)
                with torch.no_grad():
                    dist = self.model.dist(x, mask)
                    action = dist.sample()
                    buf_val[t] = self.model.value(x)
                buf_obs[t], buf_mask[t], buf_act[t] = x, mask, action
                buf_logp[t] = dist.log_prob(action)
                out = self.vec.step(action.cpu().numpy())
                reward = np.repeat(out.team_reward[:, None], self.vec.n_agents, axis=1)
                done = out.terminated | out.truncated
                reward, phi, shaped = self._shape(reward, out, phi)
                shaping_sum += shaped
                reward = torch.as_tensor(reward * cfg.reward_scale, dtype=torch.float32,
                                         device=dev)
                if out.truncated.any():  # a time limit is not the end of the task: bootstrap
                    cut = torch.as_tensor(out.truncated, device=dev)
                    final = self.model.inputs(torch.as_tensor(out.final_obs, device=dev))
                    with torch.no_grad():
                        reward[cut] += cfg.gamma * self.model.value(final[cut])
                buf_rew[t] = reward
                buf_done[t] = torch.as_tensor(done, dtype=torch.float32,
                                              device=dev)[:, None].expand(shape[1:])
                obs = torch.as_tensor(out.obs, device=dev)
                mask = torch.as_tensor(out.mask, device=dev)
                finished.extend(out.finished)
            with torch.no_grad():
                next_val = self.model.value(self.model.inputs(obs))
            adv = self._gae(buf_rew, buf_val, buf_done, next_val)
            losses = self._learn(buf_obs, buf_mask, buf_act, buf_logp, adv, adv + buf_val)
            self.update += 1
            self.env_steps += cfg.steps_per_update
            self.wall_s += time.perf_counter() - start
            row = self._row(finished, losses, shaping_sum, time.perf_counter() - start)
            if self.update % cfg.checkpoint_every == 0 or self.update == cfg.updates:
                self._save_checkpoint()
            self.curves.append(row)
            if on_update is not None:
                on_update(row)
        self.curves.close()
        self.vec.close()
        self.plot()
        return {"updates": self.update, "env_steps": self.env_steps, "wall_s": self.wall_s,
                "device": dev.type, "device_reason": self.device_choice.reason,
                "run_dir": str(self.run_dir)}

    def _phi(self, obs: torch.Tensor) -> torch.Tensor | None:
        return self.shaper.potentials(obs) if self.shaper is not None else None

    def _shape(self, reward: np.ndarray, out: Any, phi: torch.Tensor | None
               ) -> tuple[np.ndarray, torch.Tensor | None, float]:
        """Add this mode's shaping; returns (rewards, Φ of the next obs, shaping added)."""
        cfg = self.config
        scale = self.shaping_scale()
        if cfg.reward == "hand":
            extra = scale * out.extra_reward
            return reward + extra, phi, float(extra.sum())
        if cfg.reward != "llm" or phi is None:
            return reward, phi, 0.0
        dev = self.device
        phi_final = self.shaper.potentials(torch.as_tensor(out.final_obs, device=dev))
        keep = 1.0 - torch.as_tensor(out.terminated, dtype=torch.float32, device=dev)[:, None]
        gamma = cfg.gamma if cfg.shaping_gamma < 0 else cfg.shaping_gamma
        term = scale * (gamma * phi_final * keep - phi)
        extra = term.cpu().numpy().astype(np.float64)
        return reward + extra, self.shaper.potentials(torch.as_tensor(out.obs, device=dev)), \
            float(extra.sum())

    def shaping_scale(self) -> float:
        """`--shaping-scale`, faded linearly to 0 over `--shaping-anneal` env steps.

        Why fade: shaping guides the early search, but a policy can settle where the shaped
        reward is comfortable (holding a soup: every other interaction would drop it) and
        stop looking for the sparse reward; as the shaping fades the sparse reward takes over,
        as in Overcooked-AI's own PPO baselines.
        """
        cfg = self.config
        if not cfg.shaping_anneal:
            return cfg.shaping_scale
        return cfg.shaping_scale * max(0.0, 1.0 - self.env_steps / cfg.shaping_anneal)

    def _gae(self, rew: torch.Tensor, val: torch.Tensor, done: torch.Tensor,
             next_val: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        adv = torch.zeros_like(rew)
        last = torch.zeros_like(next_val)
        for t in range(cfg.num_steps - 1, -1, -1):
            following = next_val if t == cfg.num_steps - 1 else val[t + 1]
            live = 1.0 - done[t]
            delta = rew[t] + cfg.gamma * following * live - val[t]
            last = delta + cfg.gamma * cfg.gae_lambda * live * last
            adv[t] = last
        return adv

    def _learn(self, obs: torch.Tensor, mask: torch.Tensor, act: torch.Tensor,
               logp: torch.Tensor, adv: torch.Tensor, ret: torch.Tensor) -> dict[str, float]:
        cfg = self.config
        n = act.numel()
        b_obs, b_mask = obs.reshape(n, -1), mask.reshape(n, -1)
        b_act, b_logp = act.reshape(n), logp.reshape(n)
        b_adv, b_ret = adv.reshape(n), ret.reshape(n)
        size = n // cfg.minibatches
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0}
        count = 0
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n, generator=gen).to(obs.device)
            for start in range(0, size * cfg.minibatches, size):
                idx = perm[start : start + size]
                dist = self.model.dist(b_obs[idx], b_mask[idx])
                new_logp = dist.log_prob(b_act[idx])
                ratio = (new_logp - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                v_loss = 0.5 * (self.model.value(b_obs[idx]) - b_ret[idx]).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = pg + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.opt.step()
                with torch.no_grad():
                    kl = ((ratio - 1) - (new_logp - b_logp[idx])).mean()
                for key, value in (("policy_loss", pg), ("value_loss", v_loss),
                                   ("entropy", entropy), ("approx_kl", kl)):
                    stats[key] += float(value.detach())
                count += 1
        return {k: v / max(count, 1) for k, v in stats.items()}

    def _row(self, finished: list[dict[str, float]], losses: dict[str, float],
             shaping_sum: float, seconds: float) -> dict[str, Any]:
        row: dict[str, Any] = {"update": self.update, "env_steps": self.env_steps,
                               "episodes": len(finished)}
        keys = sorted({k for ep in finished for k in ep})
        for key in keys:
            row[key] = float(np.mean([ep.get(key, 0.0) for ep in finished]))
        row["shaping_per_step"] = shaping_sum / (self.config.steps_per_update
                                                 * self.vec.n_agents)
        row["steps_per_s"] = self.config.steps_per_update / max(seconds, 1e-9)
        row["wall_s"] = self.wall_s
        row.update(losses)
        return row

    def plot(self) -> Path | None:
        """Draw this run's return and success curves to `curves.png`."""
        if not (self.run_dir / CURVES_CSV).exists():
            return None
        rows = self.curves.rows()
        metric = "soups" if any("soups" in r for r in rows) else "return"
        return plot({self.config.reward: [self.run_dir]}, metric, self.run_dir / "curves.png",
                    title=f"{self.config.env_id} · {self.config.reward}")
