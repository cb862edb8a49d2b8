"""Scoring candidate replies on the embedded model: one prompt pass, then a token tree.

log P(candidate | prompt) is the sum of the model's next-token log-probabilities along the
candidate's tokens, closed by the end-of-turn token (so "MOVE red" cannot win by stopping
early inside "MOVE red_cube"). Candidates share prefixes ("EXECUTE\\nNAME Alice ACTION ..."),
so they are laid out as a trie and the whole trie is evaluated in one batch after the
prompt: each candidate is a llama.cpp sequence, the prompt's KV cells belong to all of them,
and a trie node's token belongs to the sequences of the candidates below it. A token attends
through its first sequence id, which every ancestor shares and no sibling branch has, so
each candidate sees exactly the prompt and its own prefix.

This runs on a second llama.cpp context over the same weights (several sequences, one
unified KV buffer); it keeps its own prompt prefix between calls, so a scoring pass
re-evaluates only the changed tail of the prompt, and the generation context is untouched.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_SEQUENCES = 64  # candidates per batch (llama.cpp allows up to 256); more are chunked


@dataclass
class _Node:
    token: int
    depth: int  # 0 = the first reply token
    children: dict[int, _Node] = field(default_factory=dict)
    leaves: list[int] = field(default_factory=list)  # candidates ending at or below here
    ends: list[int] = field(default_factory=list)  # candidates whose last token this is


def _trie(sequences: list[list[int]]) -> list[_Node]:
    """The trie's nodes in pre-order (every parent before its children)."""
    root = _Node(-1, -1)
    for i, seq in enumerate(sequences):
        node = root
        for tok in seq:
            node = node.children.setdefault(tok, _Node(tok, node.depth + 1))
            node.leaves.append(i)
        node.ends.append(i)
    order: list[_Node] = []
    stack = list(reversed(root.children.values()))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(node.children.values()))
    return order


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class TokenTreeScorer:
    """Scores on a dedicated multi-sequence context of one `Llama` (caller holds its lock)."""

    def __init__(self, llama: Any) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self.llama = llama
        self.lib = llama_cpp
        self.n_vocab = llama.n_vocab()
        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True
        self.ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self.n_batch = int(llama.n_batch)
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0,
                                           n_seq_max=MAX_SEQUENCES, verbose=False)
        self.cached: list[int] = []  # the prompt tokens held by sequence 0
        self.decodes = 0
        self.last_used = 0  # set by the pool that hands scorers out

    def shared_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of `prompt` this context already holds."""
        n = 0
        for a, b in zip(self.cached, prompt, strict=False):
            if a != b:
                break
            n += 1
        return n

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    # -- llama.cpp batches ----------------------------------------------------------------

    def _decode(self, entries: list[tuple[int, int, list[int], bool]]) -> np.ndarray:
        """Decode (token, pos, seq ids, wants logits) entries; logits rows of those flagged."""
        b = self.batch.batch
        b.n_tokens = len(entries)
        for i, (tok, pos, seqs, logits) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = len(seqs)
            for j, s in enumerate(seqs):
                b.seq_id[i][j] = s
            b.logits[i] = logits
        self.ctx.decode(self.batch)
        self.decodes += 1
        rows = sum(1 for e in entries if e[3])
        out = np.ctypeslib.as_array(
            ctypes.cast(self.ctx.get_logits(), ctypes.POINTER(ctypes.c_float)),
            shape=(rows * self.n_vocab,),
        )
        return out.reshape(rows, self.n_vocab).copy()

    def _prompt(self, prompt: list[int]) -> np.ndarray:
        """Next-token log-probs after the prompt, evaluating only what sequence 0 lacks."""
        shared = min(self.shared_prefix(prompt), len(prompt) - 1)  # the last token is re-run
        self.ctx.kv_cache_seq_rm(0, shared, -1)
        self.cached = self.cached[:shared]
        last = np.empty(0)
        for start in range(shared, len(prompt), self.n_batch):
            chunk = prompt[start : start + self.n_batch]
            end = start + len(chunk) == len(prompt)
            entries = [(t, start + i, [0], end and i == len(chunk) - 1)
                       for i, t in enumerate(chunk)]
            rows = self._decode(entries)
            self.cached += chunk
            if end:
                last = rows[0]
        return _log_softmax(last[None, :])[0]

    # -- scoring --------------------------------------------------------------------------

    def score(self, prompt: list[int], candidates: list[list[int]]) -> list[float]:
        """Σ log P(token | prefix) over each candidate's tokens, in candidate order."""
        longest = max(len(c) for c in candidates)
        if len(prompt) + longest > self.ctx.n_ctx():
            raise ValueError("the prompt and the longest candidate exceed the context window")
        first = self._prompt(prompt)
        out = [0.0] * len(candidates)
        for lo in range(0, len(candidates), MAX_SEQUENCES):
            chunk = candidates[lo : lo + MAX_SEQUENCES]
            for i, value in enumerate(self._score_chunk(len(prompt), first, chunk)):
                out[lo + i] = value
        return out

    def _score_chunk(self, n_prompt: int, first: np.ndarray,
                     candidates: list[list[int]]) -> list[float]:
        for s in range(1, len(candidates)):  # the prompt's cells join every sequence
            self.ctx.kv_cache_seq_cp(0, s, -1, -1)
        nodes = _trie(candidates)
        dists: dict[int, np.ndarray] = {}  # id(node) -> next-token log-probs after it
        try:
            for start in range(0, len(nodes), self.n_batch):
                part = nodes[start : start + self.n_batch]
                entries = [(n.token, n_prompt + n.depth, n.leaves, bool(n.children))
                           for n in part]
                rows = _log_softmax(self._decode(entries)) if any(e[3] for e in entries) \
                    else np.empty((0, self.n_vocab))
                for node, row in zip((n for n in part if n.children), rows, strict=True):
                    dists[id(node)] = row
        finally:
            for s in range(1, len(candidates)):
                self.ctx.kv_cache_seq_rm(s, -1, -1)
            self.ctx.kv_cache_seq_rm(0, n_prompt, -1)
        out = [0.0] * len(candidates)
        self._accumulate(nodes, first, dists, out)
        return out

    @staticmethod
    def _accumulate(nodes: list[_Node], first: np.ndarray, dists: dict[int, np.ndarray],
                    out: list[float]) -> None:
        """Walk the pre-order list with a stack of (depth, running log-prob, parent dist)."""
        stack: list[tuple[float, np.ndarray]] = []  # index = depth
        for node in nodes:
            del stack[node.depth :]
            total, dist = stack[-1] if stack else (0.0, first)
            total += float(dist[node.token])
            for leaf in node.ends:
                out[leaf] = total
            stack.append((total, dists.get(id(node), dist)))
