"""PPO throughput: environment steps/s and update steps/s, on CPU (and CUDA when present).

Run: .venv/bin/python benchmarks/perf/ppo_throughput.py [--env overcooked/cramped_room-v0]
     [--seconds 5] [--threads 1]

Measured in the same run:

- reference: the env copies alone (`VecEnv.step` with uniformly random actions, no torch) —
  the ceiling for collection on this machine;
- rollout: the trainer's collection loop (policy forward, sampling, GAE bookkeeping) with
  each reward mode's extra work (sparse; LLM potentials: two Φ forwards per step); the ratio
  is rollout / reference;
- update: PPO gradient steps/s on one minibatch of the default size (8 envs × 128 steps × 2
  agents / 4 minibatches = 512 samples), per device;
- end to end: `Trainer.train` for a few updates, env steps/s including the updates;
- with CUDA present, each CUDA figure over the CPU's, and what `--device auto` picks for the
  default run (its measurement, as written to the run's `device.json`).

Numbers depend on the machine's load: the script prints the load average next to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import torch

from coopbench.core.device import host_cpu
from coopbench.credit.potential import PotentialNet, save
from coopbench.credit.ppo import ActorCritic, TrainConfig, Trainer
from coopbench.credit.shaping import Shaper
from coopbench.credit.vecenv import VecEnv


def env_only(env_id: str, seconds: float, n: int = 8) -> float:
    vec = VecEnv(env_id, n, seed=0)
    vec.reset()
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(rng.integers(vec.n_actions[0], size=(n, vec.n_agents)))
        steps += n
    return steps / (time.perf_counter() - start)


def rollout(env_id: str, seconds: float, device: torch.device, shaper: Shaper | None,
            n: int = 8) -> float:
    vec = VecEnv(env_id, n, seed=0)
    obs, mask = vec.reset()
    model = ActorCritic(vec.obs_dim, vec.n_agents, vec.max_actions, 64).to(device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = model.inputs(torch.as_tensor(obs, device=device))
        with torch.no_grad():
            dist = model.dist(x, torch.as_tensor(mask, device=device))
            action = dist.sample()
            model.value(x)
        out = vec.step(action.cpu().numpy())
        if shaper is not None:
            shaper.potentials(out.final_obs)
            shaper.potentials(out.obs)
        obs, mask = out.obs, out.mask
        steps += n
    return steps / (time.perf_counter() - start)


def updates(obs_dim: int, device: torch.device, seconds: float, batch: int = 512) -> float:
    torch.manual_seed(0)
    model = ActorCritic(obs_dim, 2, 6, 64).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x = torch.randn(batch, obs_dim + 2, device=device)
    mask = torch.ones(batch, 6, dtype=torch.bool, device=device)
    act = torch.randint(6, (batch,), device=device)
    adv, ret = torch.randn(batch, device=device), torch.randn(batch, device=device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        dist = model.dist(x, mask)
        ratio = (dist.log_prob(act) - dist.log_prob(act).detach()).exp()
        loss = -(adv * ratio).mean() + 0.5 * (model.value(x) - ret).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def end_to_end(env_id: str, device: str, updates_n: int = 3) -> float:
    root = tempfile.mkdtemp(prefix="ppo-bench-")
    try:
        config = TrainConfig(env_id, total_steps=updates_n * 8 * 128, device=device,
                             tensorboard=False)
        result = Trainer(config, root, log=lambda m: None).train()
        return result["env_steps"] / result["wall_s"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def auto_choice(env_id: str) -> str:
    """What `--device auto` picks for the default run on this machine, and why."""
    root = tempfile.mkdtemp(prefix="ppo-bench-auto-")
    try:
        trainer = Trainer(TrainConfig(env_id, tensorboard=False), root, log=lambda m: None)
        choice = trainer.device_choice
        timings = ", ".join(f"{k} {v * 1e3:.0f} ms/update" for k, v in choice.seconds.items())
        return choice.describe() + (f" [{timings}]" if timings else "")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="overcooked/cramped_room-v0")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"CPU: {host_cpu()}")
    print(f"env {args.env} · torch {torch.__version__} · threads {args.threads} · "
          f"load average {os.getloadavg()[0]:.1f} · devices {[d.type for d in devices]}")
    ref = env_only(args.env, args.seconds)
    print(f"reference  env copies alone (8, random actions)   {ref:10.0f} env steps/s")
    vec = VecEnv(args.env, 1)
    tmp = tempfile.mkdtemp(prefix="ppo-bench-phi-")
    try:
        net = PotentialNet(vec.obs_dim, vec.n_agents)
        save(net, tmp, {"env_id": args.env, "features_version": vec.features_version,
                        "agents": vec.agents})
        rates: dict[tuple[str, str], float] = {}
        for device in devices:
            shaper = Shaper.load(tmp, device=str(device))
            for label, sh in (("sparse", None), ("llm potentials", shaper)):
                rate = rates[device.type, label] = rollout(args.env, args.seconds, device, sh)
                print(f"{device.type:5} rollout, {label:15}            {rate:10.0f} env steps/s"
                      f"  ({rate / ref:.2f} × reference)")
            rate = rates[device.type, "update"] = updates(vec.obs_dim, device, args.seconds)
            print(f"{device.type:5} PPO update, minibatch 512              {rate:10.0f} update "
                  f"steps/s ({rate * 512:.0f} samples/s)")
            rate = rates[device.type, "end to end"] = end_to_end(args.env, device.type)
            print(f"{device.type:5} end to end (Trainer, 3 updates)        {rate:10.0f} env steps/s"
                  f"  ({rate / ref:.2f} × reference)")
        if len(devices) > 1:
            for what in ("sparse", "llm potentials", "update", "end to end"):
                print(f"CUDA / CPU, {what:15} {rates['cuda', what] / rates['cpu', what]:6.2f}")
        print(f"--device auto picks {auto_choice(args.env)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
