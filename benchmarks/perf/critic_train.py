"""Critic training speed: coopbench's trainer against a plain eager loop over the same network.

Run: .venv/bin/python benchmarks/perf/critic_train.py [--repeats 5] [--seconds 2] [--threads 1]
     [--device cpu|cuda|all] [--ensemble 3] [--demo-rows 20000]

Measured in the same run, on each device (CPU; CUDA too when torch sees one), each figure the
median of `--repeats` interleaved runs (the machine may be shared):

- reference: a plain eager torch loop over the same network (`QNet`: verb/object/identity
  embeddings + 2 x 256 MLP of a roco/sweep-y2g2-shaped critic: 60 features, two agents with 9
  and 15 actions) on one fixed batch already on the device: forward, MSE, backward, Adam. No
  data pipeline, no validation, nothing else;
- ours: `coopbench.critics.train.train` on a synthetic dataset of that shape (prefix rows,
  masking, row weights, shuffling, per-epoch validation, early-stopping bookkeeping) for a
  fixed number of epochs; samples/s = training rows processed / training wall time (as
  `coopbench critic train` reports it); the ratio is ours / the reference at the same batch;
- ours with `--ensemble` members (trained as one stacked network), rows of all members
  counted, against the same one-network reference;
- on CUDA, ours with the CUDA-graph step switched off (`capture="off"`) as well;
- ReAd's budget (9e5 iterations x 32 = 2.9e7 samples) converted to seconds at each rate;
- the demo critic (`--demo-rows`; 0 skips it): the default config to the end of early stopping.

The CPU thread count is the same for both sides (`--threads`, default 1 = the trainer's
default). The `lscpu` model name is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from coopbench.core.device import host_cpu
from coopbench.critics.critic import build_net
from coopbench.critics.dataset import FORMAT, Dataset
from coopbench.critics.train import TrainConfig, train

READ_SAMPLES = 9e5 * 32


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(data: Dataset, device: torch.device, batch: int, seconds: float) -> float:
    """Samples/s of the textbook loop over the critic's own network (`QNet`)."""
    torch.manual_seed(0)
    hparams = {"encoder": "structured", "hidden": 256, "layers": 2, "emb": 16}
    net = build_net({"feature_dim": data.features.shape[1], "table": data.meta["table"],
                     "hparams": hparams}).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, data.features.shape[1], generator=gen).to(device)
    acts = torch.stack([torch.randint(-1, 9, (batch,), generator=gen),
                        torch.randint(-1, 15, (batch,), generator=gen)], 1).to(device)
    y = torch.randn(batch, generator=gen).to(device)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x, acts), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):
        step()
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        n += 10
    _sync(device)
    return n * batch / (time.perf_counter() - start)


def ours(data: Dataset, device: str, batch: int, epochs: int, threads: int, ensemble: int = 1,
         capture: str = "auto") -> float:
    cfg = TrainConfig(batch_size=batch, epochs=epochs, patience=10**6, device=device,
                      threads=threads, ensemble=ensemble, capture=capture)
    _, report = train(data, cfg, "/tmp/coopbench-perf-critic.pt")
    return report.samples_per_s


def median_of(repeats: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each named measurement `repeats` times, interleaved; the median of each."""
    got: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            got[name].append(run())
    return {k: statistics.median(v) for k, v in got.items()}


def measure(name: str, data: Dataset, args: argparse.Namespace) -> None:
    """One device's lines: each batch size against the plain loop, then the ensemble."""
    device = torch.device(name)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"\n== {device} ==")
    for batch in batches:
        epochs = max(1, args.epochs // 3) if batch <= 32 else args.epochs
        runs: dict[str, Callable[[], float]] = {
            "plain": lambda b=batch: plain_loop(data, device, b, args.seconds),
            "ours": lambda b=batch, e=epochs: ours(data, name, b, e, args.threads),
        }
        if device.type == "cuda":
            runs["eager"] = lambda b=batch, e=epochs: ours(data, name, b, e, args.threads,
                                                           capture="off")
        got = median_of(args.repeats, runs)
        line = (f"batch {batch:5d}: plain loop {got['plain']:12,.0f} samples/s | coopbench "
                f"trainer {got['ours']:12,.0f} = {got['ours'] / got['plain']:.2f} x plain "
                f"| ReAd budget {READ_SAMPLES / got['ours']:7,.1f} s")
        if "eager" in got:
            line += f" | without CUDA graph {got['eager']:,.0f}"
        print(line, flush=True)
    if args.ensemble > 1:
        batch = 256 if 256 in batches else batches[-1]
        got = median_of(args.repeats, {
            "plain": lambda: plain_loop(data, device, batch, args.seconds),
            "ens": lambda: ours(data, name, batch, args.epochs, args.threads,
                                ensemble=args.ensemble)})
        print(f"ensemble of {args.ensemble}, batch {batch}: {got['ens']:,.0f} member-samples/s"
              f" = {got['ens'] / got['plain']:.2f} x one network's plain loop", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per reference measurement")
    parser.add_argument("--repeats", type=int, default=5, help="medians of this many runs")
    parser.add_argument("--rows", type=int, default=6000, help="synthetic transitions (x3 rows)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run of ours")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, both sides")
    parser.add_argument("--ensemble", type=int, default=3, help="members in the ensemble line")
    parser.add_argument("--batches", default="32,256,1024", help="batch sizes to measure")
    parser.add_argument("--device", default="all", help="cpu, cuda or all (those present)")
    parser.add_argument("--demo-rows", type=int, default=0, help="demo critic (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    names = {"all": ["cpu"] + (["cuda"] if cuda else []), "cpu": ["cpu"], "cuda": ["cuda"]}
    if args.device not in names or (args.device == "cuda" and not cuda):
        parser.error(f"--device {args.device}: use cpu, all{', cuda' if cuda else ''}")
    print(f"CPU: {host_cpu()}; load average {os.getloadavg()[0]:.1f}")
    print(f"torch {torch.__version__}, threads {args.threads}, "
          f"CUDA: {torch.cuda.get_device_name(0) if cuda else 'none'}; "
          f"medians of {args.repeats} runs")
    data = synthetic(args.rows)
    for name in names[args.device]:
        measure(name, data, args)
    if args.demo_rows:
        start = time.perf_counter()
        _, report = train(synthetic(args.demo_rows, seed=1), TrainConfig(device="cpu"),
                          "/tmp/coopbench-perf-demo.pt")
        print(f"\ndemo critic (default config, {args.demo_rows} transitions, CPU): "
              f"{time.perf_counter() - start:.1f} s, {report.epochs} epochs "
              f"({report.stopped} stop) -- budget 300 s")


if __name__ == "__main__":
    main()
