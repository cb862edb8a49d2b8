"""`--device auto`: the measured rule, its record in the run's files, and the CUDA-only code
paths of critic training exercised on the CPU (CI has no GPU; a fake measurement stands in)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from coopbench.core import device as device_mod
from coopbench.core.device import MARGIN, choose
from coopbench.core.errors import CoopbenchError
from coopbench.critics import train as train_mod
from coopbench.critics.critic import pick_device
from coopbench.critics.dataset import FORMAT, Dataset
from coopbench.critics.train import TrainConfig, train


def fake_probe(cpu_s: float, cuda_s: float):
    calls: list[str] = []

    def probe(dev: torch.device) -> float:
        calls.append(dev.type)
        return {"cpu": cpu_s, "cuda": cuda_s}[dev.type]

    return probe, calls


def never(dev: torch.device) -> float:
    raise AssertionError(f"probed {dev} on a machine without CUDA")


def yes() -> bool:
    return True


def test_without_cuda_auto_is_the_cpu_and_nothing_is_measured():
    got = choose("auto", never, pick_device, cuda_available=lambda: False)
    assert got.device.type == "cpu" and got.reason == "no CUDA device" and got.seconds == {}
    assert json.loads(json.dumps(got.to_json()))["device"] == "cpu"


def test_a_slower_cuda_is_never_chosen():
    probe, calls = fake_probe(cpu_s=1.0, cuda_s=2.5)
    got = choose("auto", probe, pick_device, cuda_available=yes)
    assert calls == ["cpu", "cuda"]
    assert got.device.type == "cpu" and "0.40x" in got.reason
    assert got.to_json()["probe_seconds"] == {"cpu": 1.0, "cuda": 2.5}


def test_cuda_must_win_by_the_margin():
    probe, _ = fake_probe(cpu_s=1.0, cuda_s=1.0 / (MARGIN * 0.99))  # faster, not by enough
    assert choose("auto", probe, pick_device, cuda_available=yes).device.type == "cpu"
    probe, _ = fake_probe(cpu_s=1.0, cuda_s=0.25)
    got = choose("auto", probe, pick_device, cuda_available=yes)
    assert got.device.type == "cuda" and "4.0x" in got.reason


def test_a_failing_cuda_probe_falls_back_to_the_cpu():
    def broken(dev: torch.device) -> float:
        if dev.type == "cuda":
            raise RuntimeError("CUDA error: no kernel image is available\nmore")
        return 1.0

    got = choose("auto", broken, pick_device, cuda_available=yes)
    assert got.device.type == "cpu" and "no kernel image" in got.reason and "more" not in got.reason


def test_named_devices_skip_the_measurement_and_keep_their_errors():
    assert choose("cpu", never, pick_device).reason == "asked for"
    with pytest.raises(CoopbenchError, match="use auto, cpu or cuda"):
        choose("tpu", never, pick_device)


def test_the_probe_leaves_the_random_streams_alone():
    def noisy(dev: torch.device) -> float:
        torch.rand(100)
        return 1.0

    before = torch.get_rng_state()
    choose("auto", noisy, pick_device, cuda_available=yes)
    assert torch.equal(before, torch.get_rng_state())


def synthetic(rows: int = 400) -> Dataset:
    rng = np.random.default_rng(0)
    vocab = {"A": ["MOVE x_1", "MOVE x_2", "WAIT"], "B": ["PICK y", "WAIT"]}
    meta = {"format": FORMAT, "env_id": "synthetic/two-v0", "features_version": "1",
            "table": {"agents": ["A", "B"], "vocab": vocab}, "gamma": 0.9, "episodes": rows // 10}
    actions = np.stack([rng.integers(0, 3, rows), rng.integers(0, 2, rows)], 1)
    feats = rng.random((rows, 5), dtype=np.float32)
    returns = (feats[:, 0] + (actions[:, 0] == 2)).astype(np.float32)
    return Dataset(feats, actions.astype(np.int64), returns, returns.copy(),
                   np.arange(rows) // 10, np.zeros(rows, dtype=np.int64), meta)


SMALL = {"hidden": 16, "layers": 2, "emb": 4, "epochs": 4, "device": "cpu"}


def test_critic_training_with_a_fake_slower_cuda_stays_on_the_cpu_and_records_why(
        tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", yes)
    probed: list[str] = []

    def probe(stack, cfg, rows, dev):
        probed.append(dev.type)
        return {"cpu": 0.5, "cuda": 0.9}[dev.type]

    monkeypatch.setattr(train_mod, "_probe", probe)
    _, report = train(synthetic(), TrainConfig(**{**SMALL, "device": "auto"}), tmp_path / "c.pt")
    assert probed == ["cpu", "cuda"] and report.device == "cpu"
    meta = torch.load(tmp_path / "c.pt", weights_only=True)["meta"]
    choice = meta["training"]["device_choice"]
    assert choice["requested"] == "auto" and choice["probe_seconds"] == {"cpu": 0.5, "cuda": 0.9}
    assert "measured" in choice["reason"] and meta["hparams"]["batch_size"] == 256
    assert meta["training"]["captured"] is False


def test_the_critic_probe_times_the_real_step_without_touching_the_run():
    from coopbench.critics.critic import build_net
    from coopbench.critics.model import QStack

    meta = {"feature_dim": 5, "table": synthetic().meta["table"],
            "hparams": {"encoder": "structured", "hidden": 16, "layers": 2, "emb": 4}}
    stack = QStack([build_net(meta), build_net(meta)])
    rows = train_mod._Rows(torch.rand(50, 5), stack.table_index(torch.randint(-1, 2, (50, 2))),
                           torch.rand(50), torch.ones(50))
    before = [p.detach().clone() for p in stack.parameters()]
    rng = torch.get_rng_state()
    seconds = train_mod._probe(stack, TrainConfig(**SMALL), rows, torch.device("cpu"))
    assert math.isfinite(seconds) and seconds > 0
    assert all(torch.equal(p, q) for p, q in zip(stack.parameters(), before, strict=True))
    assert torch.equal(rng, torch.get_rng_state())


def test_a_cuda_graph_step_falls_back_to_eager_without_cuda(tmp_path, monkeypatch):
    """`capture` asked for on a machine that cannot record: the same weights as eager."""
    monkeypatch.setattr(train_mod, "_capture_wanted", lambda cfg, dev: cfg.capture != "off")
    _, eager = train(synthetic(), TrainConfig(**{**SMALL, "capture": "off"}), tmp_path / "e.pt")
    _, tried = train(synthetic(), TrainConfig(**SMALL), tmp_path / "g.pt")
    a = torch.load(tmp_path / "e.pt", weights_only=True)
    b = torch.load(tmp_path / "g.pt", weights_only=True)
    assert b["meta"]["training"]["captured"] is False
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_the_recorded_step_replays_the_same_training(tmp_path, monkeypatch):
    """A stand-in recorder with a graph's semantics (warm-up runs, then replay = run the body
    on the static buffers): the warm-up is undone and replays train exactly as eager steps,
    through an ensemble member leaving the stack (a second recording)."""
    recordings: list[int] = []

    def fake_record(body, device, warmup: int = 3):
        assert device.type == "cpu"
        for _ in range(warmup + 1):  # warm-up, then the "capture" run (a real one doesn't run)
            body()
        recordings.append(1)
        return body

    monkeypatch.setattr(train_mod, "_capture_wanted", lambda cfg, dev: cfg.capture != "off")
    monkeypatch.setattr(train_mod, "record_graph", fake_record)
    cfg = {**SMALL, "ensemble": 3, "epochs": 30, "patience": 2, "lr": 1e-2}  # stop at 13, 21, 23
    _, eager = train(synthetic(), TrainConfig(**{**cfg, "capture": "off"}), tmp_path / "e.pt")
    assert recordings == []
    _, graph = train(synthetic(), TrainConfig(**cfg), tmp_path / "g.pt")
    a = torch.load(tmp_path / "e.pt", weights_only=True)
    b = torch.load(tmp_path / "g.pt", weights_only=True)
    assert b["meta"]["training"]["captured"] is True and len(recordings) == 3
    for one, other in zip([a["state_dict"], *a["members"]], [b["state_dict"], *b["members"]],
                          strict=True):
        assert all(torch.equal(one[k], other[k]) for k in one)
    assert eager.epochs == graph.epochs and eager.val_loss == graph.val_loss


def test_bad_capture_and_batch_options_are_one_line_errors():
    with pytest.raises(CoopbenchError, match="capture"):
        TrainConfig(capture="always").validate()
    with pytest.raises(CoopbenchError, match="batch size"):
        TrainConfig(batch_size=-1).validate()


def test_time_per_call_is_positive():
    assert device_mod.time_per_call(lambda: torch.ones(3).sum(), torch.device("cpu"), 3) > 0


def _ppo(device: str, **kw):
    from coopbench.credit.ppo import TrainConfig as PPOConfig

    return PPOConfig(**{**dict(env_id="meetgrid/meet-v0", total_steps=256, num_envs=2,
                               num_steps=64, tensorboard=False, seed=3, device=device), **kw})


def _losses(run_dir) -> list[tuple]:
    from coopbench.credit.curves import load_rows

    keys = ("update", "return", "policy_loss", "value_loss", "entropy", "approx_kl")
    return [tuple(r.get(k) for k in keys) for r in load_rows(run_dir)]


def test_ppo_auto_with_a_fake_slower_cuda_trains_as_on_the_cpu(meetgrid, tmp_path, monkeypatch):
    from coopbench.credit.ppo import DEVICE, Trainer

    torch.set_num_threads(1)
    Trainer(_ppo("cpu"), tmp_path / "cpu", log=lambda m: None).train()
    monkeypatch.setattr(torch.cuda, "is_available", yes)
    probed: list[str] = []

    def probe(self, dev: torch.device) -> float:
        probed.append(dev.type)
        return {"cpu": 0.2, "cuda": 0.3}[dev.type]

    monkeypatch.setattr(Trainer, "_probe", probe)
    lines: list[str] = []
    result = Trainer(_ppo("auto"), tmp_path / "auto", log=lines.append).train()
    assert probed == ["cpu", "cuda"] and result["device"] == "cpu"
    assert "measured: CUDA only 0.67x" in lines[0] and "measured" in result["device_reason"]
    record = json.loads((tmp_path / "auto" / DEVICE).read_text())
    assert record["device"] == "cpu" and record["probe_seconds"] == {"cpu": 0.2, "cuda": 0.3}
    assert _losses(tmp_path / "auto") == _losses(tmp_path / "cpu")  # the probe drew no numbers


def test_ppo_auto_without_cuda_measures_nothing(meetgrid, tmp_path, monkeypatch):
    from coopbench.credit.ppo import DEVICE, Trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(Trainer, "_probe", lambda self, dev: never(dev))
    trainer = Trainer(_ppo("auto"), tmp_path, log=lambda m: None)
    assert trainer.device.type == "cpu"
    assert json.loads((tmp_path / DEVICE).read_text())["reason"] == "no CUDA device"


def test_the_ppo_probe_times_this_runs_update_on_the_cpu(meetgrid, tmp_path):
    from coopbench.credit.ppo import Trainer

    trainer = Trainer(_ppo("cpu"), tmp_path, log=lambda m: None)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    seconds = trainer._probe(torch.device("cpu"))
    assert math.isfinite(seconds) and seconds > 0
    assert all(torch.equal(v, before[k]) for k, v in trainer.model.state_dict().items())


def test_a_member_leaving_the_stack_does_not_change_the_others():
    """`_Step.shrink`: the remaining members (weights and Adam state) train on as before."""
    import copy

    from coopbench.critics.critic import build_net
    from coopbench.critics.model import QStack

    meta = {"feature_dim": 5, "table": synthetic().meta["table"],
            "hparams": {"encoder": "structured", "hidden": 16, "layers": 2, "emb": 4}}
    torch.manual_seed(0)
    stack = QStack([build_net(meta) for _ in range(3)])
    gen = torch.Generator().manual_seed(1)
    rows = train_mod._Rows(torch.rand(60, 5, generator=gen),
                           stack.table_index(torch.randint(-1, 2, (60, 2), generator=gen)),
                           torch.rand(60, generator=gen), torch.ones(60))
    full = train_mod._Step(stack, 1e-2, rows, capture=False)
    batches = [torch.randint(60, (3, 8), generator=gen) for _ in range(6)]
    for idx in batches[:3]:
        full(idx)
    cut = train_mod._Step(copy.deepcopy(stack), 1e-2, rows, capture=False)
    cut.opt.load_state_dict(copy.deepcopy(full.opt.state_dict()))
    cut.shrink([0, 2])
    assert cut.stack.size == 2
    for idx in batches[3:]:
        full_losses = full(idx)
        cut_losses = cut(idx[[0, 2]])
        assert torch.allclose(full_losses[[0, 2]], cut_losses, atol=1e-6)
    for pos, member in ((0, 0), (1, 2)):
        one, other = cut.stack.member_state(pos), full.stack.member_state(member)
        assert all(torch.allclose(one[k], other[k], atol=1e-6) for k in one)
