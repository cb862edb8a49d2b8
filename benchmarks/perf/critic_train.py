"""Critic training speed: samples/s on CPU (and CUDA when present), against plain torch loops.

Run: .venv/bin/python benchmarks/perf/critic_train.py [--seconds 3] [--demo-rows 20000]

Measured in the same run, on the same device:

- reference: a plain torch loop (Adam, MSE, random tensors already on the device) over an MLP of
  ReAd's size (input 2x768+64, one hidden layer of 256), at batch 32 and 1024, which is what
  the paper's critic costs per sample;
- ours: `coopbench.critics.train.train` (prefix rows, masking, verb/object embeddings, early
  stopping bookkeeping) on a synthetic dataset shaped like roco/sweep-y2g2-v0 (60 features,
  two agents with 9 and 15 actions), for a fixed number of epochs, at batch 32, 256 (the
  default) and 1024; the ratio is ours / the plain loop at the same batch size;
- the demo critic: the default training config on `--demo-rows` transitions, wall time to
  the end of early stopping (the budget is 5 minutes on this CPU).

ReAd's budget, 9e5 iterations at batch 32 = 2.9e7 samples, is converted to seconds at each
measured rate.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from coopbench.critics.dataset import FORMAT, Dataset
from coopbench.critics.train import TrainConfig, train

READ_SAMPLES = 9e5 * 32


def plain_loop(device: torch.device, batch: int, seconds: float, width: int = 2 * 768 + 64,
               hidden: int = 256, layers: int = 1) -> float:
    """Samples/s of the textbook loop: no data pipeline at all."""
    torch.manual_seed(0)
    blocks: list[torch.nn.Module] = []
    w = width
    for _ in range(layers):
        blocks += [torch.nn.Linear(w, hidden), torch.nn.ReLU()]
        w = hidden
    net = torch.nn.Sequential(*blocks, torch.nn.Linear(w, 1)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch, width, device=device)
    y = torch.randn(batch, device=device)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x).squeeze(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):
        step()
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            step()
        n += 20
    _sync(device)
    return n * batch / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic(rows: int, seed: int = 0) -> Dataset:
    """A dataset shaped like roco/sweep-y2g2-v0's (the numbers are random)."""
    rng = np.random.default_rng(seed)
    vocab = {"Alice": [f"MOVE cube_{i}" for i in range(7)] + ["DUMP", "WAIT"],
             "Bob": [f"MOVE cube_{i}" for i in range(7)] + [f"SWEEP cube_{i}" for i in range(7)]
             + ["WAIT"]}
    actions = np.stack([rng.integers(0, 9, rows), rng.integers(0, 15, rows)], 1)
    meta = {"format": FORMAT, "env_id": "synthetic/sweep-v0", "features_version": "1",
            "table": {"agents": ["Alice", "Bob"], "vocab": vocab}, "gamma": 0.95,
            "episodes": rows // 10}
    return Dataset(rng.random((rows, 60), dtype=np.float32), actions.astype(np.int64),
                   rng.random(rows, dtype=np.float32), rng.random(rows, dtype=np.float32),
                   np.arange(rows) // 10, np.zeros(rows, dtype=np.int64), meta)


def ours(device: str, batch: int, rows: int, epochs: int) -> float:
    cfg = TrainConfig(batch_size=batch, epochs=epochs, patience=10**6, device=device,
                      threads=0)
    _, report = train(synthetic(rows), cfg, "/tmp/coopbench-perf-critic.pt")
    return report.samples_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per plain-loop measurement")
    parser.add_argument("--rows", type=int, default=6000, help="synthetic transitions (x3 rows)")
    parser.add_argument("--demo-rows", type=int, default=20000, help="demo critic transitions")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    for device in devices:
        print(f"\n== {device} ==")
        ref32 = plain_loop(device, 32, args.seconds)
        ref1024 = plain_loop(device, 1024, args.seconds)
        print(f"reference ReAd-size MLP, plain loop: batch 32 {ref32 / 32:,.0f} it/s "
              f"({ref32:,.0f} samples/s, ReAd budget {READ_SAMPLES / ref32:,.0f} s); "
              f"batch 1024 {ref1024:,.0f} samples/s (budget {READ_SAMPLES / ref1024:,.0f} s)")
        for batch in (32, 256, 1024):
            epochs = 2 if batch == 32 else 6
            got = ours(device.type, batch, args.rows, epochs)
            same = plain_loop(device, batch, args.seconds / 2, width=60 + 2 * 33, layers=2)
            print(f"coopbench critic, batch {batch:4d}: {got:,.0f} samples/s = "
                  f"{got / same:.2f} x a plain loop over the same network "
                  f"({same:,.0f}); ReAd budget at this rate {READ_SAMPLES / got:,.0f} s")
    start = time.perf_counter()
    _, report = train(synthetic(args.demo_rows, seed=1), TrainConfig(device="cpu"),
                      "/tmp/coopbench-perf-demo.pt")
    print(f"\ndemo critic (default config, {args.demo_rows} transitions, CPU): "
          f"{time.perf_counter() - start:.1f} s, {report.epochs} epochs ({report.stopped} stop)"
          f" -- budget 300 s")


if __name__ == "__main__":
    main()
