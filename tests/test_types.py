import json

from hypothesis import given
from hypothesis import strategies as st

from coopbench.core.types import (
    Action,
    EpisodeResult,
    Feedback,
    ParseError,
    PlanResult,
    StepRecord,
    Usage,
)


def roundtrip(obj):
    return type(obj).from_json(json.loads(json.dumps(obj.to_json())))


def test_every_core_type_round_trips_through_json():
    action = Action("Alice", "move north", 0)
    feedback = Feedback("Bob", "reach", "Bob cannot reach panel7.")
    usage = Usage(calls=3, cache_hits=1, tokens_in=120, tokens_out=9, cost_usd=0.002)
    plan = PlanResult(
        joint={"Alice": action, "Bob": Action("Bob", "wait", 4)},
        llm_queries=3, feedback_rounds=1, parse_failures=1, verify_failures=1, usage=usage,
        transcript=[{"role": "assistant", "content": "EXECUTE\nNAME Alice ACTION move north"}],
    )
    step = StepRecord(step=2, joint={"Alice": "move north"}, reward=1.0, success=True,
                      feedback=[feedback], transcript=[{"k": "v"}])
    for obj in (action, feedback, usage, plan, step):
        assert roundtrip(obj) == obj
    assert isinstance(roundtrip(plan).joint["Alice"], Action)
    assert isinstance(roundtrip(step).feedback[0], Feedback)


def test_episode_result_serialises_return_under_its_plain_name():
    result = EpisodeResult(cell="c", env="e", planner="p", llm="none", seed=3, return_=2.5)
    data = result.to_json()
    assert data["return"] == 2.5 and "return_" not in data
    assert EpisodeResult.from_json(data) == result


@given(
    seed=st.integers(0, 2**31),
    success=st.booleans(),
    ret=st.floats(-1e6, 1e6, allow_nan=False),
    steps=st.integers(0, 1000),
    tokens=st.integers(0, 10**9),
    error=st.none() | st.text(max_size=40),
)
def test_episode_result_round_trip_property(seed, success, ret, steps, tokens, error):
    result = EpisodeResult("cell", "env/x-v0", "baseline/random-v0", "sim:expert", seed,
                           success=success, return_=ret, interaction_steps=steps,
                           tokens_in=tokens, error=error)
    assert roundtrip(result) == result


def test_usage_adds_up():
    total = Usage(1, 0, 10, 2, 0.5) + Usage(2, 1, 5, 3, 0.25)
    assert total == Usage(3, 1, 15, 5, 0.75)


def test_parse_error_becomes_feedback_for_the_llm():
    err = ParseError("Alice: 'fly' is not a valid action.", agent="Alice")
    assert err.as_feedback() == Feedback("Alice", "parse", "Alice: 'fly' is not a valid action.")
