"""`critic train --potential`: LCA potential shaping of the critics' Monte-Carlo targets."""

import numpy as np
import pytest
import torch

from coopbench import envs
from coopbench.cli import main
from coopbench.core.errors import CoopbenchError
from coopbench.credit import potential
from coopbench.credit.shaping import Shaper, shape_returns, shaped_returns
from coopbench.critics.critic import Critic
from coopbench.critics.dataset import CollectConfig, collect, make_collection_env

ENV = "meetgrid/meet-v0"


def _potential(out, env_id: str = ENV):
    """A non-constant Φ (random output layer) saved as `credit fit` would save it."""
    torch.manual_seed(0)
    net = potential.PotentialNet(obs_dim=4, n_agents=2, hidden=8)
    with torch.no_grad():
        for sub in net.nets:
            sub[-1].weight.normal_(0.0, 1.0)
    potential.save(net, out, {"env_id": env_id, "agents": ["Alice", "Bob"],
                              "features_version": "1"})
    return out


@pytest.fixture
def data(meetgrid):
    return collect(CollectConfig(ENV, expert_episodes=3, reset_episodes=3, branch=0.5,
                                 gamma=0.9, seed=1))


def test_shaped_targets_follow_shaped_returns(data, tmp_path):
    pot = _potential(tmp_path / "pot")
    shaped = shape_returns(data, pot, scale=2.0)
    assert shaped.meta["shaping"]["scale"] == 2.0 and len(shaped.meta["shaping"]["sha256"]) == 64
    shaper = Shaper.load(pot)
    cfg = CollectConfig(**data.meta["config"])
    env, _ = make_collection_env(cfg)
    checked = 0
    for episode in np.unique(data.episode):
        rows = np.flatnonzero(data.episode == episode)
        main_rows = rows[~np.isnan(data.rewards[rows])]
        observations = [env.reset(seed=cfg.seed * 100_003 + int(episode))[0]]
        terminated = False
        for row in main_rows:
            joint = {a: data.table.vocab[a][int(data.actions[row, j])]
                     for j, a in enumerate(data.table.agents) if a in env.agents}
            obs, _, terms, _, _ = env.step(joint)
            terminated = any(terms.values())
            observations.append(obs)
        phi = shaper.episode_potentials(observations)
        assert np.ptp(phi) > 1e-3  # the potential is not constant: the targets really move
        want = shaped_returns(data.rewards[main_rows], phi, 0.9, 2.0, terminated).mean(1)
        np.testing.assert_allclose(shaped.returns[main_rows], want, rtol=1e-5, atol=1e-5)
        checked += len(main_rows)
    assert checked > 0 and not np.allclose(shaped.returns, data.returns)
    branch = np.isnan(data.rewards)
    assert branch.any() and not np.allclose(shaped.returns[branch], data.returns[branch])
    np.testing.assert_array_equal(shaped.features, data.features)


def test_cli_with_and_without_potential(meetgrid, tmp_path, capsys):
    data, plain, shaped = tmp_path / "d.npz", tmp_path / "plain.pt", tmp_path / "shaped.pt"
    main(["critic", "collect", "--env", ENV, "--out", str(data), "--expert-episodes", "3",
          "--reset-episodes", "3"])
    main(["critic", "train", "--data", str(data), "--out", str(plain), "--epochs", "2"])
    pot = _potential(tmp_path / "pot")
    main(["critic", "train", "--data", str(data), "--out", str(shaped), "--epochs", "2",
          "--potential", str(pot), "--potential-scale", "0.5"])
    assert "MC targets shaped" in capsys.readouterr().out
    assert "shaping" not in Critic.load(plain).meta["dataset"]
    record = Critic.load(shaped).meta["dataset"]["shaping"]
    assert record["potential"] == str(pot) and record["scale"] == 0.5


def test_mismatched_or_missing_potential_is_one_line_error(data, tmp_path, capsys):
    other = _potential(tmp_path / "other", env_id="roco/sort-level5-v0")
    with pytest.raises(CoopbenchError, match="fitted on roco/sort-level5-v0"):
        shape_returns(data, other)
    path = tmp_path / "d.npz"
    data.save(path)
    for pot in (other, tmp_path / "missing"):
        with pytest.raises(SystemExit) as exit_:
            main(["critic", "train", "--data", str(path), "--out", str(tmp_path / "c.pt"),
                  "--potential", str(pot)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and ("fitted on" in err or "no potential" in err)
    assert envs.registry.spec(ENV).id == ENV
