"""The PPO trainer: it learns, logs curves, shapes rewards, and survives an interrupt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from coopbench import llm
from coopbench.core.errors import CoopbenchError
from coopbench.credit import potential, preferences
from coopbench.credit.curves import CURVES, first_crossing, load_rows
from coopbench.credit.ppo import CHECKPOINT, TrainConfig, Trainer, resolve_device
from coopbench.credit.preferences import CollectConfig
from coopbench.credit.shaping import Shaper

torch.set_num_threads(1)
QUIET = {"log": lambda message: None}


def _config(**kw) -> TrainConfig:
    base = dict(env_id="meetgrid/meet-v0", total_steps=2048, num_envs=4, num_steps=64,
                tensorboard=False, seed=3)
    return TrainConfig(**{**base, **kw})


def test_sparse_ppo_learns_to_meet(meetgrid, tmp_path):
    result = Trainer(_config(total_steps=8192, lr=1e-3), tmp_path, **QUIET).train()
    assert result["env_steps"] == 8192 and result["device"] in ("cpu", "cuda")
    rows = load_rows(tmp_path)
    assert [r["update"] for r in rows] == list(range(1, 33))
    assert rows[0]["success"] < 0.6
    assert np.mean([r["success"] for r in rows[-4:]]) > 0.9
    assert first_crossing(rows, "success", 0.9) is not None
    assert (tmp_path / "curves.csv").read_text().startswith("update,env_steps,episodes,return")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert json.loads((tmp_path / "train.json").read_text())["env_id"] == "meetgrid/meet-v0"


def test_resume_continues_from_the_last_checkpoint(meetgrid, tmp_path):
    config = _config(total_steps=6 * 256)

    def interrupt(row):
        if row["update"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(config, tmp_path, **QUIET).train(on_update=interrupt)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["update"] == 2
    with pytest.raises(CoopbenchError, match="already holds a training run"):
        Trainer(config, tmp_path, **QUIET)
    with pytest.raises(CoopbenchError, match="options differ.*lr"):
        Trainer(_config(total_steps=6 * 256, lr=1e-2), tmp_path, resume=True, **QUIET)
    resumed = Trainer(config, tmp_path, resume=True, **QUIET)
    assert resumed.update == 2 and resumed.env_steps == 512
    first_weights = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    for key, value in saved["model"].items():  # the weights are the interrupted run's
        torch.testing.assert_close(first_weights[key], value)
    result = resumed.train()
    assert result["updates"] == 6 and result["env_steps"] == 6 * 256
    rows = load_rows(tmp_path)
    assert [r["update"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["env_steps"] for r in rows] == [256 * k for k in range(1, 7)]


def test_a_run_saved_before_a_new_option_still_resumes(meetgrid, tmp_path):
    config = _config(total_steps=2 * 256)
    Trainer(config, tmp_path, **QUIET).train()
    saved = json.loads((tmp_path / "train.json").read_text())
    del saved["shaping_anneal"]  # as written before the option existed
    (tmp_path / "train.json").write_text(json.dumps(saved))
    resumed = Trainer(_config(total_steps=3 * 256), tmp_path, resume=True, **QUIET)
    assert resumed.train()["updates"] == 3


def test_resume_without_a_checkpoint_fails_loudly(meetgrid, tmp_path):
    with pytest.raises(CoopbenchError, match="no checkpoint"):
        Trainer(_config(), tmp_path / "empty", resume=True, **QUIET)


def test_llm_potential_mode_shapes_rewards(meetgrid, tmp_path):
    model = llm.make("sim:expert?noise=0.1&seed=0", cache=False)
    preferences.collect(CollectConfig("meetgrid/meet-v0", pairs=120, repeats=3), model,
                        tmp_path / "prefs")
    arrays, meta = preferences.load(tmp_path / "prefs")
    net, _ = potential.fit(arrays, potential.FitConfig(steps=300, lr=1e-2))
    potential.save(net, tmp_path / "pot", {k: meta[k] for k in
                                           ("env_id", "features_version", "agents")})
    shaper = Shaper.load(tmp_path / "pot")
    observations = [{"Alice": o[0], "Bob": o[1]} for o in arrays["obs"][:5]]
    phi = shaper.episode_potentials(observations)
    assert phi.shape == (5, 2) and np.ptp(phi) > 0
    run = tmp_path / "run"
    Trainer(_config(reward="llm", potential=str(tmp_path / "pot"), shaping_scale=2.0,
                    total_steps=512), run, **QUIET).train()
    rows = load_rows(run)
    assert all(r["shaping_per_step"] != 0.0 for r in rows)
    # --shaping-anneal: the same shaping fades linearly and is gone after 256 env steps
    faded = Trainer(_config(reward="llm", potential=str(tmp_path / "pot"), shaping_scale=2.0,
                            shaping_anneal=256, total_steps=768), tmp_path / "faded", **QUIET)
    assert faded.shaping_scale() == 2.0
    faded.train()
    assert faded.shaping_scale() == 0.0
    shaping = [r["shaping_per_step"] for r in load_rows(tmp_path / "faded")]
    assert shaping[0] != 0.0 and shaping[1:] == [0.0, 0.0]
    sparse = tmp_path / "sparse"
    Trainer(_config(total_steps=256), sparse, **QUIET).train()
    assert load_rows(sparse)[0]["shaping_per_step"] == 0.0


def test_bad_training_options_are_clear_errors(meetgrid, tmp_path):
    with pytest.raises(CoopbenchError, match="unknown reward mode"):
        Trainer(_config(reward="dense"), tmp_path / "a", **QUIET)
    with pytest.raises(CoopbenchError, match="needs --potential"):
        Trainer(_config(reward="llm"), tmp_path / "b", **QUIET)
    with pytest.raises(CoopbenchError, match="no potential checkpoint"):
        Trainer(_config(reward="llm", potential=str(tmp_path)), tmp_path / "c", **QUIET)
    with pytest.raises(CoopbenchError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(CoopbenchError, match="no CUDA"):
            resolve_device("cuda")
    assert not (tmp_path / "a" / CURVES).exists()


def test_the_mean_over_seeds_crosses_where_the_average_curve_does(tmp_path):
    from coopbench.credit.curves import mean_crossing

    def run(name: str, soups: list[float]):
        path = tmp_path / name
        path.mkdir()
        rows = [{"update": i + 1, "env_steps": 100 * (i + 1), "episodes": 1, "soups": v}
                for i, v in enumerate(soups)]
        (path / CURVES).write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    early = run("early", [0, 0, 2, 2, 2, 2])
    late = run("late", [0, 0, 0, 0, 0, 2])
    # window 1: the mean is 1 from step 300 on; each run alone crosses at 300 and 600
    assert mean_crossing([early, late], "soups", 1.0, window=1) == 300
    assert mean_crossing([early, late], "soups", 1.5, window=1) == 600
    assert mean_crossing([late], "soups", 3.0, window=1) is None
    assert first_crossing(load_rows(late), "soups", 1.0, window=1) == 600
