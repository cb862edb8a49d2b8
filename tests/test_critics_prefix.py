"""Critics: behaviour-only prefix targets and ensembles (the ReAd-S critic options)."""

import numpy as np
import pytest
import torch

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.critics.critic import Critic
from coopbench.critics.dataset import CollectConfig, collect
from coopbench.critics.train import (
    TrainConfig,
    deviations,
    keep_prefix_rows,
    prefix_rows,
    train,
)

ENV = "meetgrid/meet-v0"


@pytest.fixture
def data(meetgrid):
    return collect(CollectConfig(ENV, expert_episodes=6, reset_episodes=4, branch=0.6, seed=2))


def test_deviations_mark_the_agents_a_counterfactual_row_changed(data):
    dev = deviations(data)
    branch = np.isnan(data.rewards)
    assert branch.any() and dev.shape == data.actions.shape
    assert not dev[~branch].any()  # recorded rows are the behaviour policy's own
    # a branch deviates from the pure expert; the recorded row explores now and then, so a
    # branch can match it by chance (then nothing deviated from the behaviour action)
    assert dev[branch].any(axis=1).mean() > 0.8
    for i in np.flatnonzero(branch)[:5]:  # and exactly where it differs from its state's row
        same = (data.episode == data.episode[i]) & ~branch
        j = next(j for j in np.flatnonzero(same) if np.array_equal(data.features[j],
                                                                   data.features[i]))
        assert dev[i].tolist() == (data.actions[i] != data.actions[j]).tolist()


def test_keep_prefix_rows_drops_masked_deviations():
    index, masked = prefix_rows(np.array([[3, 4], [5, 6]]))
    deviated = np.array([[False, True], [True, False]])
    keep = keep_prefix_rows(index, masked, deviated)
    # row 0 (Bob deviated): V and Alice-only rows dropped, the joint row kept;
    # row 1 (Alice deviated): V dropped, the Alice-only and joint rows kept
    assert keep.tolist() == [False, False, True, False, True, True]


def test_behaviour_targets_and_an_ensemble_round_trip(data, tmp_path):
    cfg = TrainConfig(epochs=3, device="cpu", prefix_targets="behaviour", ensemble=3)
    critic, report = train(data, cfg, tmp_path / "e.pt")
    assert len(critic.nets) == 3 and np.isfinite(report.val_loss)
    blob = torch.load(tmp_path / "e.pt", weights_only=True)
    assert len(blob["members"]) == 2 and blob["meta"]["training"]["members"] == 3
    env = envs.make(ENV)
    env.reset(seed=0)
    loaded = Critic.load(tmp_path / "e.pt", env)
    feats, joint = env.features(), env.expert_joint()
    q = loaded.q(feats, joint)
    assert q == pytest.approx(critic.q(feats, joint), rel=1e-5)
    singles = [Critic(n, loaded.meta, torch.device("cpu")).q(feats, joint) for n in loaded.nets]
    assert q == pytest.approx(float(np.mean(singles)), rel=1e-5)
    assert len({round(s, 6) for s in singles}) > 1  # the members differ


def test_one_network_checkpoints_stay_plain(data, tmp_path):
    train(data, TrainConfig(epochs=2, device="cpu"), tmp_path / "one.pt")
    blob = torch.load(tmp_path / "one.pt", weights_only=True)
    assert "members" not in blob
    assert len(Critic.load(tmp_path / "one.pt").nets) == 1


@pytest.mark.parametrize("bad", [{"prefix_targets": "expert"}, {"ensemble": 0}])
def test_bad_options_are_one_line_errors(bad):
    with pytest.raises(CoopbenchError, match="prefix-targets|ensemble"):
        TrainConfig(**bad).validate()
