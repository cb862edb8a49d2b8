"""What other batch layouts of a scoring pass would cost in exactness and time.

Run: .venv/bin/python benchmarks/perf/scoring_layouts.py

A calibrated decision scores the prompt with its options listed forwards and reversed; the
two prompts differ from the options list on, so each pass re-evaluates its state tail and
decodes its own candidate tree (`benchmarks/perf/llm_local.py` times them). Reuse across
the two passes would need them in one llama.cpp batch, and llama.cpp's numbers for a token
depend on the batch it is computed in. This script measures both sides on the decision
prompts of llm_local.py, against today's pass (`TokenTreeScorer.score`):

- the tree decoded in smaller batches (a pass split to share a batch with another);
- both options orders in one context: state tails and trees of the two prompts decoded
  together (the "one KV pass for both orders"), with the time of its joint tree decode
  against one pass's tree.

Scores must stay within 1e-4 nats of today's for a layout to be usable.
"""

from __future__ import annotations

import time

import numpy as np
from llm_local import CHOICES, reversed_options, stable

from coopbench.llm import local, make, token_tree
from coopbench.llm.token_tree import TokenTreeScorer, _inner, _log_softmax, _trie


def tokens(llama, messages) -> tuple[list[int], list[list[int]]]:
    text, end = local._render_prompt(llama, tuple(messages))
    prompt = llama.tokenize(text.encode(), add_bos=False, special=True)
    cands = [[*llama.tokenize(c.encode(), add_bos=False, special=False), end] for c in CHOICES]
    return prompt, cands


def split_trees(llama, prompt, cands, reference) -> None:
    for size in (35, 17, 8, 1):
        scorer = TokenTreeScorer(llama)
        scorer.n_batch = size  # the tree goes in as batches of `size` nodes
        diff = np.abs(np.array(scorer.score(prompt, cands)) - reference).max()
        scorer.close()
        print(f"tree in batches of {size:2d} nodes: scores moved by up to {diff:.4f} nats")


def joint_orders(llama, forwards, backwards, cands, references) -> None:
    """Both prompts (same length) fed together in 32-token chunks, then both trees at once."""
    token_tree.MAX_SEQUENCES = 2 * 64
    scorer = TokenTreeScorer(llama)
    n, second = len(forwards), 64
    firsts = None
    for pos in range(0, n, token_tree.ALIGN):
        entries = [(t, pos + i, [seq], pos + i == n - 1)
                   for seq, prompt in ((0, forwards), (second, backwards))
                   for i, t in enumerate(prompt[pos : pos + token_tree.ALIGN])]
        rows = scorer._decode(entries)
        if len(rows):
            firsts = _log_softmax(rows)
    trees = [_trie(cands), _trie(cands)]
    for s in range(1, len(cands) + 1):
        scorer.ctx.kv_cache_seq_cp(0, s, -1, -1)
        scorer.ctx.kv_cache_seq_cp(second, second + s, -1, -1)
    inner = [_inner(t) for t in trees]
    entries = [(nd.token, n + nd.depth, [base + 1 + x for x in nd.leaves], True)
               for base, part in ((0, inner[0]), (second, inner[1])) for nd in part]
    start = time.perf_counter()
    rows = _log_softmax(scorer._decode(entries))
    joint_s = time.perf_counter() - start
    for k, (tree, part, ref) in enumerate(zip(trees, inner, references, strict=True)):
        dists = {id(nd): row for nd, row in zip(part, rows[k * len(inner[0]):], strict=False)}
        out = [0.0] * len(cands)
        TokenTreeScorer._accumulate(tree, firsts[k], dists, out)
        name = ("forwards", "reversed")[k]
        print(f"both orders in one batch, {name}: scores moved by up to "
              f"{np.abs(np.array(out) - ref).max():.4f} nats")
    scorer.close()
    alone = TokenTreeScorer(llama)
    alone.score(forwards, cands)  # the prompt cached, then one tree timed
    start = time.perf_counter()
    alone.score(forwards, cands)
    one_s = time.perf_counter() - start
    print(f"joint tree decode {joint_s:.2f} s ({len(entries)} nodes) vs one pass {one_s:.2f} s "
          f"({len(inner[0])} nodes and the prompt's last chunk)")


def main() -> None:
    model = make("local", cache=False)
    llama, lock = model.backend.llama()
    with lock:
        forwards, cands = tokens(llama, stable(3))
        backwards, _ = tokens(llama, reversed_options(3))
        refs = [np.array(TokenTreeScorer(llama).score(p, cands)) for p in (forwards, backwards)]
        split_trees(llama, forwards, cands, refs[0])
        if len(forwards) == len(backwards):
            joint_orders(llama, forwards, backwards, cands, refs)


if __name__ == "__main__":
    main()
