"""Scoring candidate replies on the embedded model: one prompt pass, then a token tree.

log P(candidate | prompt) is the sum of the model's next-token log-probabilities along the
candidate's tokens, closed by the end-of-turn token (so "MOVE red" cannot win by stopping
early inside "MOVE red_cube"). Candidates share prefixes ("EXECUTE\\nNAME Alice ACTION ..."),
so they are laid out as a trie and the whole trie is evaluated in one batch after the
prompt: each candidate is a llama.cpp sequence, the prompt's KV cells belong to all of them,
and a trie node's token belongs to the sequences of the candidates below it. A token attends
through its first sequence id, which every ancestor shares and no sibling branch has, so
each candidate sees exactly the prompt and its own prefix. A node without children (a
candidate's closing token) is never decoded: its log-probability comes from its parent's
row, and nothing attends to it, so decoding it would only cost time (a third of the tree).

This runs on a second llama.cpp context over the same weights (several sequences, one
unified KV buffer); it keeps its own prompt prefix between calls, so a scoring pass
re-evaluates only the changed tail of the prompt, and the generation context is untouched.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A prompt goes in as batches of ALIGN tokens at fixed positions (0-31, 32-63, ...), and a
# cached prefix is cut back to a multiple of ALIGN before its tail is re-evaluated: llama.cpp's
# numbers for a token depend on the batch it is computed in (with the repacked kernels, by
# up to 0.25 nats), so a pass that resumed wherever the context's cache ended scored with the
# call history. With fixed batches every pass over a prompt computes each token in the same
# batch, whatever came before, for at most ALIGN - 1 re-evaluated tokens.
ALIGN = 32
MAX_SEQUENCES = 64  # candidates per batch (llama.cpp allows up to 256); more are chunked
ECHO_ROWS = 32  # tokens per decode when every one needs logits: 32 x n_vocab floats (19 MB)


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


def _inner(nodes: list[_Node]) -> list[_Node]:
    """The nodes that have children, in pre-order: the only ones a decode needs."""
    return [n for n in nodes if n.children]


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
        self.known: list[int] = []  # the last echoed prefix and log P of each of its tokens
        self.known_logprobs: list[float | None] = []
        self.known_after: np.ndarray | None = None  # next-token log-probs after `known`
        self.decodes = 0
        self.last_used = 0  # set by the pool that hands scorers out

    def shared_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of `prompt` this context already holds."""
        return _shared(self.cached, prompt)

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    # -- llama.cpp batches ----------------------------------------------------------------

    def _decode(self, entries: list[tuple[int, int, list[int], bool]]) -> np.ndarray:
        """Decode (token, pos, seq ids, wants logits) entries; logits rows of those flagged."""
        return self._rows(0, self._submit(entries))

    def _submit(self, entries: list[tuple[int, int, list[int], bool]]) -> int:
        """Decode the entries; how many logits rows llama.cpp holds for them."""
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
        return sum(1 for e in entries if e[3])

    def _rows(self, first: int, count: int) -> np.ndarray:
        """A copy of logits rows first .. first + count - 1 of the last decode."""
        out = np.ctypeslib.as_array(
            ctypes.cast(self.ctx.get_logits(), ctypes.POINTER(ctypes.c_float)),
            shape=((first + count) * self.n_vocab,),
        )
        return out[first * self.n_vocab :].reshape(count, self.n_vocab).copy()

    def _prompt(self, prompt: list[int]) -> np.ndarray:
        """Next-token log-probs after the prompt, evaluating only what sequence 0 lacks."""
        start = min(self.shared_prefix(prompt), len(prompt) - 1)
        return _log_softmax(self._feed(prompt, start, want_last=True))[0]

    def _feed(self, tokens: list[int], start: int, want_last: bool) -> np.ndarray:
        """Evaluate `tokens` on sequence 0 from `start` (cut back to a multiple of ALIGN) in
        ALIGN-token batches at fixed positions, so every pass computes a token in the same
        batch; the last token's logits row if `want_last` (else no rows)."""
        start = _aligned(start)
        self.ctx.kv_cache_seq_rm(0, start, -1)
        self.cached = self.cached[:start]
        rows = np.empty((0, self.n_vocab))
        for pos in range(start, len(tokens), ALIGN):
            chunk = tokens[pos : pos + ALIGN]
            last = want_last and pos + len(chunk) == len(tokens)
            rows = self._decode([(t, pos + i, [0], last and i == len(chunk) - 1)
                                 for i, t in enumerate(chunk)])
            self.cached += chunk
        return rows

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
        inner = _inner(nodes)
        dists: dict[int, np.ndarray] = {}  # id(node) -> next-token log-probs after it
        try:
            for start in range(0, len(inner), self.n_batch):
                part = inner[start : start + self.n_batch]
                rows = _log_softmax(self._decode(
                    [(n.token, n_prompt + n.depth, n.leaves, True) for n in part]))
                for node, row in zip(part, rows, strict=True):
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

    # -- echo: the log-probability of every prompt token ----------------------------------

    def echo(self, prompts: list[list[int]], split: int | None = None) -> list[list[float | None]]:
        """log P(token | the tokens before it) for every token of every prompt (None for a
        prompt's first token).

        The prompts' common prefix, cut at `split` if that is shorter, is evaluated on
        sequence 0 as `score` evaluates a prompt (reusing the cached KV prefix; the
        log-probabilities remembered from the last echo spare re-evaluating its tokens);
        the rest of every prompt then goes in as one token tree, as `score`'s candidates
        do. With `split` at the start of the reply, the reply's tokens are computed by the
        same llama.cpp batches as `score` computes them.
        """
        if not prompts or not all(prompts):
            raise ValueError("an empty prompt has no tokens to echo")
        n = min(len(p) for p in prompts) if split is None else split
        for prompt in prompts:
            n = min(n, _shared(prompts[0], prompt))
        common = prompts[0][:n]
        tails = [p[n:] for p in prompts]
        if n + max(len(t) for t in tails) > self.ctx.n_ctx():
            raise ValueError("the prompt exceeds the context window")
        head, after = self._echo_prefix(common, any(tails))
        out: list[list[float | None]] = [list(head) for _ in prompts]
        grown = [i for i, t in enumerate(tails) if t]
        for lo in range(0, len(grown), MAX_SEQUENCES):
            part = grown[lo : lo + MAX_SEQUENCES]
            for i, lps in zip(part, self._echo_tree(n, after, [tails[i] for i in part]),
                              strict=True):
                out[i] += lps
        return out

    def _echo_prefix(self, common: list[int],
                     need_after: bool) -> tuple[list[float | None], np.ndarray | None]:
        """Per-token log-probs of `common` and, if asked, the log-probs after its last token;
        sequence 0 then holds `common`.

        Sequence 0 is evaluated exactly as `_prompt` evaluates a prompt (same first token,
        same batches, logits for the last token only): llama.cpp's numbers for a token
        shift with the batch it is computed in, and the reply's tokens must meet the KV
        cells `score` gives them. The log-probabilities of the tokens not remembered from
        the last echo are then computed on a scratch sequence, in small batches.
        """
        n = len(common)
        out: list[float | None] = [None] * n
        if n == 0:
            self.ctx.kv_cache_seq_rm(0, 0, -1)
            self.cached = []
            return out, None
        known = _shared(self.known, common)
        out[1:known] = self.known_logprobs[1:known]
        last_row = n - 1 if need_after else n - 2  # row q gives log P of token q + 1
        if last_row < max(known - 1, 0):
            return out, None  # every log-probability is remembered and nothing follows
        if known == n and self.known_after is not None and self.shared_prefix(common) == n:
            return out, self.known_after  # nothing new to evaluate
        rows = self._feed(common, min(self.shared_prefix(common),
                                      n - 1 if need_after else n), need_after)
        after = _log_softmax(rows)[0] if need_after else None
        if max(known - 1, 0) < n - 1:
            self._echo_scratch(common, _aligned(max(known - 1, 0)), n - 1, out)
        self.known, self.known_logprobs, self.known_after = list(common), out, after
        return out, after

    def _echo_scratch(self, common: list[int], lo: int, hi: int,
                      out: list[float | None]) -> None:
        """log P of tokens lo + 1 .. hi: tokens lo .. hi - 1 re-run on sequence 1 over
        sequence 0's cells, in windows that fit the free cells."""
        scratch = 1
        room = min(ECHO_ROWS, self.ctx.n_ctx() - len(self.cached))
        if room < 1:
            raise ValueError("the prompt fills the context window")
        try:
            for pos in range(lo, hi, room):
                self.ctx.kv_cache_seq_rm(scratch, -1, -1)
                self.ctx.kv_cache_seq_cp(0, scratch, 0, pos)
                chunk = common[pos : min(hi, pos + room)]
                rows = _log_softmax(self._decode([(t, pos + i, [scratch], True)
                                                  for i, t in enumerate(chunk)]))
                for q, row in zip(range(pos, pos + len(chunk)), rows, strict=True):
                    out[q + 1] = float(row[common[q + 1]])
        finally:
            self.ctx.kv_cache_seq_rm(scratch, -1, -1)

    def _echo_tree(self, n_prefix: int, after: np.ndarray | None,
                   tails: list[list[int]]) -> list[list[float | None]]:
        """Per-token log-probs of each tail after the prefix held by sequence 0, in the
        batches `_score_chunk` uses (the nodes that have children, each with logits)."""
        nodes = _trie(tails)
        if n_prefix + len(nodes) > self.ctx.n_ctx():
            raise ValueError("the prompts' differing tails exceed the context window")
        for s in range(1, len(tails)):
            self.ctx.kv_cache_seq_cp(0, s, -1, -1)
        node_lp: dict[int, float | None] = {}  # id(node) -> log P(its token | its path)
        for node in nodes:
            if node.depth == 0:
                node_lp[id(node)] = None if after is None else float(after[node.token])
        inner = _inner(nodes)
        try:
            for start in range(0, len(inner), self.n_batch):
                part = inner[start : start + self.n_batch]
                self._submit([(nd.token, n_prefix + nd.depth, nd.leaves, True) for nd in part])
                for lo in range(0, len(part), ECHO_ROWS):  # logits rows, a few at a time
                    some = part[lo : lo + ECHO_ROWS]
                    for nd, row in zip(some, _log_softmax(self._rows(lo, len(some))),
                                       strict=True):
                        for child in nd.children.values():
                            node_lp[id(child)] = float(row[child.token])
        finally:
            for s in range(1, len(tails)):
                self.ctx.kv_cache_seq_rm(s, -1, -1)
            self.ctx.kv_cache_seq_rm(0, n_prefix, -1)
        out: list[list[float | None]] = [[] for _ in tails]
        path: list[_Node] = []
        for node in nodes:
            del path[node.depth :]
            path.append(node)
            for leaf in node.ends:
                out[leaf] = [node_lp[id(x)] for x in path]
        return out


def _aligned(position: int) -> int:
    """`position` cut back to a multiple of ALIGN (see ALIGN)."""
    return position // ALIGN * ALIGN


def _shared(a: list[int], b: list[int]) -> int:
    """The length of the common leading run of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
