"""Budget accounting and the per-endpoint concurrency slots shared by worker processes."""

import threading

import pytest

from coopbench.core.types import EpisodeResult, Usage
from coopbench.llm.base import Completion
from coopbench.runner.budget import BudgetExceeded, EndpointSlots, MeteredLLM, Spend
from coopbench.runner.spec import Budget


class CountingModel:
    """A stand-in backend for accounting only: every answer costs 10+5 tokens and $0.01."""

    spec = model_id = "fake"
    simulated = False

    def __init__(self, cached=False):
        self.calls = 0
        self.cached = cached

    def complete(self, messages, **kwargs):
        self.calls += 1
        usage = Usage(calls=1, cache_hits=int(self.cached), tokens_in=10, tokens_out=5,
                      cost_usd=0.01)
        return Completion("ok", usage, cached=self.cached)


def test_spend_of_episodes_counts_only_calls_that_reached_a_model():
    episodes = [
        EpisodeResult(cell="a", env="e", planner="p", llm="l", seed=0, llm_queries=7,
                      cache_hits=2, tokens_in=100, tokens_out=10, cost_usd=0.5),
        EpisodeResult(cell="b", env="e", planner="p", llm="l", seed=1, llm_queries=3),
    ]
    spend = Spend.of(episodes)
    assert spend == Spend(calls=8, tokens=110, cost_usd=0.5)
    assert spend.exhausted(Budget(max_llm_calls=8)) == "budget of 8 LLM calls reached (8 spent)"
    assert spend.exhausted(Budget(max_llm_calls=9, max_tokens=1000)) is None
    assert spend.exhausted(Budget(max_cost_usd=0.5)).startswith("budget of 0.5 dollars")
    assert spend.remaining(Budget(max_llm_calls=10, max_tokens=50)) == Budget(
        max_llm_calls=2, max_tokens=0)


@pytest.mark.parametrize(
    ("allowance", "allowed"),
    [(Budget(max_llm_calls=3), 3), (Budget(max_tokens=31), 3), (Budget(max_cost_usd=0.02), 2),
     (None, 10)],
)
def test_metered_llm_refuses_the_call_past_the_allowance(allowance, allowed):
    model = CountingModel()
    metered = MeteredLLM(model, allowance, slots=None)
    made = 0
    with pytest.raises(BudgetExceeded, match="LLM budget reached during an episode"):  # noqa: PT012
        for _ in range(10):
            metered.complete([{"role": "user", "content": "hi"}])
            made += 1
        raise BudgetExceeded("LLM budget reached during an episode: never refused")
    assert made == model.calls == allowed
    assert metered.spent.calls == allowed and metered.model_id == "fake"


def test_cache_hits_are_free():
    metered = MeteredLLM(CountingModel(cached=True), Budget(max_llm_calls=1), slots=None)
    for _ in range(5):
        metered.complete([{"role": "user", "content": "hi"}])
    assert metered.spent == Spend()


def test_endpoint_slots_cap_concurrent_calls(tmp_path):
    slots = EndpointSlots(tmp_path, "openai-compat:http://x/v1#m", limit=2)
    first, second = slots.acquire(), slots.acquire()
    assert first is not second
    got_third = threading.Event()

    def third():
        lock = slots.acquire()
        got_third.set()
        lock.release()

    thread = threading.Thread(target=third, daemon=True)
    thread.start()
    assert not got_third.wait(0.3)  # both slots are taken: the third caller waits
    first.release()
    assert got_third.wait(30)
    thread.join(30)
    second.release()
    other = EndpointSlots(tmp_path, "openai:gpt-4o", limit=1)
    other.acquire().release()  # another endpoint has its own slots
