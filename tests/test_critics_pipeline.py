"""Critics: data, prefix rows, training, checkpoints, evaluation and the CLI."""

import numpy as np
import pytest
import torch

from coopbench import envs
from coopbench.cli import main
from coopbench.core.errors import CoopbenchError
from coopbench.critics.critic import Critic, pick_device
from coopbench.critics.dataset import CollectConfig, Dataset, collect, discounted_returns
from coopbench.critics.encoding import ActionTable, tokens_of
from coopbench.critics.evaluate import EvalConfig, evaluate
from coopbench.critics.train import TrainConfig, prefix_rows, train

ENV = "meetgrid/meet-v0"


def test_discounted_returns_and_prefix_rows():
    assert discounted_returns([0, 0, 1], 0.5) == [0.25, 0.5, 1.0]
    index, masked = prefix_rows(np.array([[3, 4, 5], [0, 1, 2]]))
    assert index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert masked[:4].tolist() == [[-1, -1, -1], [3, -1, -1], [3, 4, -1], [3, 4, 5]]


def test_rare_actions_weigh_more():
    from coopbench.critics.train import action_weights

    acts = torch.tensor([[0, 1], [0, 1], [0, 1], [2, 1], [-1, -1]])
    w = action_weights(acts, 1.0)
    assert w.mean().item() == pytest.approx(1.0)
    assert w[3] > w[0] and torch.allclose(w[:3], w[0].expand(3))
    assert torch.equal(action_weights(acts, 0.0), torch.ones(5))


def test_action_tokens_split_verbs_and_objects():
    assert tokens_of("PICK blue_square PLACE panel2") == ["pick", "blue", "square", "place",
                                                          "panel2"]
    table = ActionTable(["A", "B"], {"A": ["MOVE green_cube_1", "WAIT"], "B": ["WAIT"]})
    ids = table.token_table()
    assert ids.shape == (2, 2, 4) and ids[1, 1].tolist() == [0, 0, 0, 0]
    assert ids[0, 1, 0] == ids[1, 0, 0]  # WAIT shares its token across agents


@pytest.fixture
def small_data(meetgrid):
    return collect(CollectConfig(ENV, expert_episodes=6, reset_episodes=6, gamma=0.9, seed=1))


def test_collect_records_provenance_and_round_trips(small_data, tmp_path):
    data = small_data
    assert len(data) == data.features.shape[0] == data.actions.shape[0] == data.returns.shape[0]
    assert data.actions.shape[1] == 2 and data.meta["env_id"] == ENV
    assert set(np.unique(data.source)) == {0, 1} and data.meta["gamma"] == 0.9
    ep = (data.episode == data.episode[0]) & ~np.isnan(data.rewards)  # observed steps
    assert np.allclose(data.returns[ep], discounted_returns(data.rewards[ep].tolist(), 0.9))
    branch = np.isnan(data.rewards)  # counterfactual rows: a deviation, then the pure expert
    assert branch.any() and np.isfinite(data.returns[branch]).all()
    loaded = Dataset.load(data.save(tmp_path / "d.npz"))
    assert np.array_equal(loaded.actions, data.actions) and loaded.meta == data.meta
    (tmp_path / "bad.npz").write_bytes(b"not a dataset")
    with pytest.raises(CoopbenchError, match="cannot read critic dataset"):
        Dataset.load(tmp_path / "bad.npz")


def test_train_saves_a_checkpoint_that_checks_its_env(small_data, tmp_path, monkeypatch):
    critic, report = train(small_data, TrainConfig(epochs=3, device="cpu"), tmp_path / "c.pt")
    assert report.device == "cpu" and report.epochs <= 3 and np.isfinite(report.val_loss)
    env = envs.make(ENV)
    env.reset(seed=0)
    loaded = Critic.load(tmp_path / "c.pt", env)
    feats = env.features()
    joint = env.expert_joint()
    assert loaded.q(feats, joint) == pytest.approx(critic.q(feats, joint), rel=1e-5)
    assert loaded.value(feats) == pytest.approx(loaded.q(feats, {}))
    monkeypatch.setattr(type(env), "features_version", "99")
    with pytest.raises(CoopbenchError, match="features version"):
        Critic.load(tmp_path / "c.pt", env)
    monkeypatch.setattr(type(env), "vocabulary", lambda self, agent: ["wait", "jump"])
    with pytest.raises(CoopbenchError, match="vocabulary"):
        Critic.load(tmp_path / "c.pt", env)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CoopbenchError, match="cannot read critic checkpoint"):
        Critic.load(tmp_path / "junk.pt")


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CoopbenchError, match="use auto"):
        pick_device("tpu")


def test_a_critic_learns_to_rank_the_expert_first(tmp_path):
    """The RoCo Sort tabletop (pymunk): expert + random-reset data, held-out states."""
    env_id = "roco/sort-level3-v0"
    data = collect(CollectConfig(env_id, expert_episodes=20, reset_episodes=40))
    critic, _ = train(data, TrainConfig(epochs=60, patience=10, max_seconds=40, device="cpu"),
                      tmp_path / "sort.pt")
    report = evaluate(critic, EvalConfig(env_id, states=120))
    assert report.states == 120
    assert report.joint_rank > 0.65 and report.mean_gap > 0  # chance is 0.5


def test_cli_collect_train_eval(meetgrid, tmp_path, capsys):
    data, ckpt = tmp_path / "d.npz", tmp_path / "c.pt"
    main(["critic", "collect", "--env", ENV, "--out", str(data), "--expert-episodes", "4",
          "--reset-episodes", "4"])
    main(["critic", "train", "--data", str(data), "--out", str(ckpt), "--epochs", "2",
          "--device", "auto"])
    out = capsys.readouterr().out
    assert "training on " in out and ckpt.exists()
    main(["critic", "eval", "--critic", str(ckpt), "--states", "10", "--json", "--oracle"])
    out = capsys.readouterr().out
    assert '"joint_rank"' in out and '"agreement"' in out
    with pytest.raises(SystemExit) as exit_:
        main(["critic", "train", "--data", str(data), "--out", str(ckpt), "--device", "tpu"])
    assert exit_.value.code == 2
    assert "use auto, cpu or cuda" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["critic", "eval", "--critic", str(tmp_path / "missing.pt")])
    assert exit_.value.code == 2


def test_oracle_acceptance_is_the_ceiling_of_expert_acceptance(meetgrid, critic_path):
    """With true returns the meetgrid expert (optimal) is never beaten by a random plan, so
    its plan is truly acceptable at every state; the critic's acceptance can only be lower."""
    env = envs.make(ENV)
    env.reset(seed=0)
    critic = Critic.load(critic_path, env)
    report = evaluate(critic, EvalConfig(ENV, states=30, oracle=True))
    assert report.oracle_acceptance == 1.0
    assert 0.0 <= report.expert_acceptance <= 1.0
    assert evaluate(critic, EvalConfig(ENV, states=5)).oracle_acceptance is None
