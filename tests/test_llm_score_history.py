"""A scoring pass gives the same numbers whatever the scoring context held before.

llama.cpp's repacked kernels (the default load) compute a token's numbers by where it falls
in its batch, so a pass that resumed evaluation wherever the context's cached prefix ended
moved scores by 0.08-0.2 nats with the call history (a repeated pass, or a pass after another
step's prompt). The token tree resumes at a multiple of `token_tree.ALIGN`; these tests hold
it to bit-equal scores on the real Qwen2.5-Coder-0.5B, on whatever CPU runs them.
"""

from __future__ import annotations

import pytest

from coopbench.llm import local, make
from coopbench.llm.token_tree import TokenTreeScorer

ACTIONS = ["up", "down", "left", "right", "stay", "interact"]
CHOICES = [f"NAME Alice ACTION {a} NAME Bob ACTION {b}" for a in ACTIONS for b in ACTIONS[:3]]
RULES = ("You coordinate two cooks, Alice and Bob, in a small kitchen. A soup needs three "
         "onions in the pot, cooks for 20 steps and is served with a dish. Each step every "
         "cook takes one action. Legal joint actions:\n" + "\n".join(CHOICES))


def state(i: int) -> str:
    return (f"Step {i}. Alice is at ({1 + i % 3}, {1 + i % 2}) holding "
            f"{['nothing', 'an onion', 'a dish'][i % 3]}. Bob is at ({3 - i % 3}, 2). "
            f"The pot holds {i % 4} onions." + " Nothing else changed." * (i % 5))


@pytest.fixture(scope="module")
def tokens():
    model = make("local", cache=False)
    llama, lock = model.backend.llama()

    def encode(i: int) -> tuple[list[int], list[list[int]]]:
        text, end = local._render_prompt(llama, ({"role": "system", "content": RULES},
                                                 {"role": "user", "content": state(i)}))
        prompt = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return prompt, [[*llama.tokenize(c.encode("utf-8"), add_bos=False, special=False),
                         end] for c in CHOICES]

    with lock:
        yield llama, encode


def test_a_repeated_pass_and_a_pass_after_other_prompts_score_bit_equal(tokens):
    llama, encode = tokens
    for i in (3, 4, 7):
        prompt, candidates = encode(i)
        fresh = TokenTreeScorer(llama)
        other = TokenTreeScorer(llama)
        try:
            first = fresh.score(prompt, candidates)
            assert fresh.score(prompt, candidates) == first  # the same context, again
            other.score(*encode(i - 1))  # another step's prompt shares most of the prefix
            assert other.score(prompt, candidates) == first
            other.score(*encode(i + 5))
            assert other.score(prompt, candidates) == first
        finally:
            fresh.close()
            other.close()
