"""The plan grammar: `NAME <agent> ACTION <action>` lines after EXECUTE / PROCEED."""

import pytest

from coopbench import envs
from coopbench.agents.replies import format_joint, format_own, parse_joint, parse_own
from coopbench.core.types import ParseError


@pytest.fixture
def env(meetgrid):
    e = envs.make("meetgrid/meet-v0")
    e.reset(seed=0)
    return e


def test_round_trip_and_tolerance(env):
    text = format_joint({"Alice": "move south", "Bob": "move north"})
    assert text == "EXECUTE\nNAME Alice ACTION move south\nNAME Bob ACTION move north"
    joint = parse_joint(env, text)
    assert {a: x.text for a, x in joint.items()} == {"Alice": "move south", "Bob": "move north"}
    messy = ("Let me think. Alice should go down.\n**EXECUTE**\n- NAME alice ACTION Move South.\n"
             "* `NAME Bob ACTION north PATH [(0,0,1)]`")
    joint = parse_joint(env, messy)
    assert joint["Alice"].text == "move south" and joint["Bob"].text == "move north"


def test_the_last_keyword_counts(env):
    text = ("EXECUTE\nNAME Alice ACTION wait\nNAME Bob ACTION wait\nOn second thought:\n"
            "EXECUTE\nNAME Alice ACTION move east\nNAME Bob ACTION move west")
    joint = parse_joint(env, text)
    assert joint["Alice"].text == "move east" and joint["Bob"].text == "move west"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("NAME Alice ACTION wait\nNAME Bob ACTION wait", "no 'EXECUTE'"),
        ("EXECUTE\nAlice waits, Bob waits", "No 'NAME"),
        ("EXECUTE\nNAME Alice ACTION wait", "no ACTION line for Bob"),
        ("EXECUTE\nNAME Alice ACTION wait\nNAME Alice ACTION wait\nNAME Bob ACTION wait",
         "more than one"),
        ("EXECUTE\nNAME Carol ACTION wait\nNAME Bob ACTION wait", "no robot named 'Carol'"),
        ("EXECUTE\nNAME Alice ACTION fly\nNAME Bob ACTION wait", "not a valid action"),
        ("EXECUTE\nNAME Alice ACTION move north\nNAME Bob ACTION wait", "not possible now"),
    ],
)
def test_bad_plans_raise_parse_errors_fit_for_the_llm(env, text, fragment):
    with pytest.raises(ParseError, match=fragment):
        parse_joint(env, text)


def test_own_action_after_proceed(env):
    assert parse_own(env, "Bob", format_own("Bob", "move west")).text == "move west"
    reply = "PROCEED\nNAME Alice ACTION move east\nNAME Bob ACTION move north"
    assert parse_own(env, "Bob", reply).text == "move north"  # teammates' lines are ignored
    with pytest.raises(ParseError, match="for yourself"):
        parse_own(env, "Bob", "PROCEED\nNAME Alice ACTION move east")
    with pytest.raises(ParseError, match="no 'PROCEED'"):
        parse_own(env, "Bob", "EXECUTE\nNAME Bob ACTION move north")
