"""Language grounding, verification, skills and bad input on the Overcooked envs."""

from __future__ import annotations

import numpy as np
import pytest

from coopbench import envs
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import ParseError


@pytest.fixture
def cramped():
    env = envs.make("overcooked/cramped_room-v0")
    env.reset(seed=0)
    return env


@pytest.fixture
def skills():
    env = envs.make("overcooked/cramped_room-skills-v0")
    env.reset(seed=0)
    return env


def test_primitive_vocabulary_and_tolerant_parsing(cramped):
    assert cramped.vocabulary("Alice") == ["north", "south", "east", "west", "stay", "interact"]
    assert cramped.wait_action("Bob").text == "stay"
    for text, expected in [("Interact", "interact"), ("move north", "north"), ("WAIT", "stay"),
                           ("  South. ", "south"), ("Move West", "west"), ("stay", "stay")]:
        assert cramped.parse("Alice", text).text == expected


@pytest.mark.parametrize("text", ["fly to the moon", "", "north east", "interact!!!?x"])
def test_garbage_text_is_a_parse_error_listing_the_options(cramped, text):
    with pytest.raises(ParseError) as err:
        cramped.parse("Alice", text)
    assert "north, south, east, west, stay, interact" in str(err.value)
    with pytest.raises(ParseError):
        cramped.step({"Alice": text, "Bob": "stay"})


def test_using_an_env_before_reset_is_a_clear_error():
    env = envs.make("overcooked/cramped_room-v0")
    for call in (env.describe, env.features, env.render, env.expert_joint):
        with pytest.raises(CoopbenchError, match="reset"):
            call()
    with pytest.raises(CoopbenchError, match="reset"):
        env.step({"Alice": 0, "Bob": 0})


def test_bad_indices_agents_and_finished_episodes_are_clear_errors(cramped):
    with pytest.raises(CoopbenchError, match="out of range"):
        cramped.step({"Alice": 9, "Bob": 0})
    with pytest.raises(ParseError, match="no agent named"):
        cramped.parse("Carol", "north")
    env = envs.make("overcooked/cramped_room-read-v0", max_steps=2)
    env.reset(seed=0)
    env.step({"Alice": 4, "Bob": 4})
    env.step({"Alice": 4, "Bob": 4})
    assert env.agents == []
    with pytest.raises(CoopbenchError, match="reset"):
        env.step({"Alice": 4, "Bob": 4})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layout": "cramped_rom"}, "did you mean cramped_room"),
    ({"layout": "counter_circuit_o_1ordr"}, "counter_circuit_o_1order"),
    ({"layout": "cramped_room_single"}, "1 players"),
    ({"layout": "multiplayer_schelling"}, "4 players"),
    ({"setting": "hard"}, "unknown Overcooked setting"),
    ({"action_level": "macro"}, "unknown action_level"),
    ({"obs_type": "pixels"}, "unknown obs_type"),
])
def test_bad_constructor_arguments_are_coopbench_errors(kwargs, message):
    with pytest.raises(CoopbenchError, match=message):
        envs.make("overcooked/layout-v0", **kwargs)


def test_describe_gives_grid_coordinates_pots_and_holdings(cramped):
    text = cramped.describe()
    assert "Alice is at (2, 1) facing north" in text
    assert "Bob is at (1, 3) facing north" in text
    assert "  3   X  D  X  S  X" in text  # row 3 of the ASCII grid, (row, col) labelled
    assert "Pot 0 at (0, 2): empty." in text
    assert "Serving windows: (3, 3)." in text
    for alice, bob in [("north", "east"), ("west", "interact"), ("interact", "west")]:
        cramped.step({"Alice": alice, "Bob": bob})
    text = cramped.describe()
    assert "Alice is at (1, 1) facing west (towards the onion dispenser at (1, 0)), holding an " \
           "onion." in text
    assert "Bob is at (1, 2)" in text
    prompt = cramped.task_prompt()
    assert "(row, col)" in prompt and "interact" in prompt and "400 ticks" in prompt


def test_partial_view_hides_far_cells():
    env = envs.make("overcooked/asymmetric_advantages-v0", view_radius=1)
    env.reset(seed=0)
    mine = env.describe("Alice")
    assert "?" in mine and "Bob is out of sight." in mine
    assert "You are Alice. Your options now:" in mine
    assert "?" not in env.describe().split("Legend")[0]
    with pytest.raises(CoopbenchError):
        env.describe("Zed")


def test_pot_text_reports_cooking_progress():
    env = envs.make("overcooked/cramped_room-read-v0")
    env.reset(seed=0)
    assert "not cooking" not in env.describe()
    while "; cooking," not in env.describe():
        env.step(env.expert_joint())
    assert "cooking, 1 more ticks (1/2)" in env.describe()


def test_verify_reports_collisions(cramped):
    cramped.step({"Alice": "east", "Bob": "stay"})  # Alice (2, 2), Bob (1, 3)
    same_cell = {"Alice": cramped.parse("Alice", "north"), "Bob": cramped.parse("Bob", "west")}
    feedback = cramped.verify(same_cell)
    assert [f.kind for f in feedback] == ["collision"]
    assert "(1, 2)" in feedback[0].message
    cramped.step({"Alice": "stay", "Bob": "south"})  # Bob (2, 3), beside Alice
    swap = {"Alice": cramped.parse("Alice", "east"), "Bob": cramped.parse("Bob", "west")}
    assert [f.kind for f in cramped.verify(swap)] == ["collision"]
    into = {"Alice": cramped.parse("Alice", "east"), "Bob": cramped.parse("Bob", "stay")}
    (feedback,) = cramped.verify(into)
    assert feedback.agent == "Alice" and "Bob stays there" in feedback.message
    fine = {"Alice": cramped.parse("Alice", "north"), "Bob": cramped.parse("Bob", "stay")}
    assert cramped.verify(fine) == []


def test_skill_options_follow_the_state(skills):
    assert skills.action_options("Alice") == ["pick up onion", "pick up dish", "wait"]
    mask = skills.action_mask("Alice")
    assert mask.sum() == 3 and mask[skills.wait_index("Alice")] == 1
    skills.step({"Alice": "pick up onion", "Bob": "wait"})
    options = skills.action_options("Alice")
    assert "put onion in pot" in options and "pick up dish" not in options
    assert "place held item on counter 0" in options
    assert skills.parse("Alice", "Put onion into pot").text == "put onion in pot"
    with pytest.raises(ParseError, match="not possible now"):
        skills.parse("Alice", "serve soup")


def test_skill_level_bad_input(skills):
    with pytest.raises(CoopbenchError, match="out of range"):
        skills.step({"Alice": len(skills.vocabulary("Alice")), "Bob": 0})
    with pytest.raises(ParseError, match="Choose one of: pick up onion, pick up dish, wait"):
        skills.step({"Alice": "make a sandwich", "Bob": "wait"})
    skills.step({"Alice": "pick up dish"})  # Bob, left out, waits
    assert skills.state.players[0].held_object.name == "dish"
    assert skills.state.players[1].held_object is None


def test_infeasible_skill_finishes_early_with_feedback(skills):
    index = skills.vocabulary("Alice").index("serve soup")
    _, _, _, _, infos = skills.step({"Alice": index, "Bob": "wait"})
    assert skills.last_ticks == 1
    assert infos["Alice"]["feedback"][0]["kind"] == "execution"
    assert "not holding a soup" in infos["Alice"]["feedback"][0]["message"]


def test_vanished_target_ends_the_skill_with_feedback(skills):
    skills.step({"Alice": "pick up onion", "Bob": "wait"})
    # Alice puts the onion on a counter that both can reach, then both reach for it.
    shared = [k for k, c in enumerate(skills.kitchen.counters)
              if skills.kitchen.can_reach(skills.state.players[0].pos_and_or, c)
              and skills.kitchen.can_reach(skills.state.players[1].pos_and_or, c)]
    counter = shared[0]
    skills.step({"Alice": f"place held item on counter {counter}", "Bob": "wait"})
    both = {a: skills.parse(a, f"pick up item from counter {counter}") for a in skills.agents}
    assert [f.kind for f in skills.verify(both)] == ["constraint"]
    skills.step(both)
    holders = [p.held_object for p in skills.state.players]
    assert sum(h is not None for h in holders) == 1
    messages = [f.message for f in skills.last_feedback]
    assert len(messages) == 1 and "is empty" in messages[0]


def test_plating_waits_for_the_soup_then_serves():
    env = envs.make("overcooked/cramped_room-skills-v0")
    env.reset(seed=0)
    env.step({"Alice": "pick up onion", "Bob": "pick up onion"})
    env.step({"Alice": "put onion in pot", "Bob": "put onion in pot"})
    env.step({"Alice": "pick up onion", "Bob": "wait"})
    env.step({"Alice": "put onion in pot", "Bob": "wait"})
    assert "Pot 0 at (0, 2): onion, onion, onion; not cooking" in env.describe()
    env.step({"Alice": "start cooking", "Bob": "pick up dish"})
    before = env.ticks
    env.step({"Alice": "wait", "Bob": "plate soup"})
    assert env.state.players[1].held_object.name == "soup"
    assert env.ticks - before >= 10  # it waited at the pot for the 20-tick soup
    _, rewards, *_ = env.step({"Alice": "wait", "Bob": "serve soup"})
    assert rewards["Bob"] == 20 and env.soups_delivered == 1


@pytest.mark.parametrize("name", ["coordination_ring", "forced_coordination"])
def test_random_skills_never_loop_forever(name):
    env = envs.make(f"overcooked/{name}-skills-v0", max_skill_ticks=30)
    env.reset(seed=0)
    rng = np.random.default_rng(7)
    while env.agents:
        joint = {a: int(rng.choice(np.flatnonzero(env.action_mask(a)))) for a in env.agents}
        env.step(joint)
        assert 1 <= env.last_ticks <= 30
    assert env.ticks == 400


def test_render_snapshot_and_restore(cramped):
    image = cramped.render()
    assert image.dtype == np.uint8 and image.shape == (4 * 32, 5 * 32, 3)
    snap = cramped.snapshot()
    cramped.step({"Alice": "north", "Bob": "west"})
    assert not np.array_equal(image, cramped.render())
    cramped.restore(snap)
    np.testing.assert_array_equal(image, cramped.render())
    assert cramped.steps_taken == 0 and cramped.state.timestep == 0


def _corridor(alice, bob):
    """cramped_corridor: two rows joined by a one-cell gap at (row 2, col 4)."""
    from coopbench.envs.overcooked.upstream import Direction, PlayerState

    env = envs.make("overcooked/layout-v0", layout="cramped_corridor", action_level="skills")
    env.reset(seed=0)
    env.state.players = (PlayerState(alice, Direction.NORTH), PlayerState(bob, Direction.SOUTH))
    return env


def test_an_idle_partner_in_the_way_steps_aside():
    env = _corridor(alice=(6, 3), bob=(4, 2))  # Bob stands in the gap
    env.step({"Alice": "pick up tomato", "Bob": "wait"})
    assert env.state.players[0].held_object.name == "tomato"
    assert env.last_feedback == [] and env.last_ticks < 15


def test_agents_meeting_head_on_in_a_gap_get_past_each_other():
    env = _corridor(alice=(4, 3), bob=(4, 1))  # each must pass through the other's side
    env.step({"Alice": "pick up tomato", "Bob": "pick up onion"})
    assert [p.held_object.name for p in env.state.players] == ["tomato", "onion"]
    assert env.last_feedback == []


def test_a_partner_blocking_a_dead_end_makes_the_skill_give_up_with_feedback():
    """you_shall_not_pass: Bob stands in the one cell in front of the east pot and cannot get
    out of the way (a dead end); Alice's skill gives up instead of looping."""
    env = envs.make("overcooked/layout-v0", layout="you_shall_not_pass", action_level="skills")
    env.reset(seed=0)
    env.step({"Alice": "pick up onion", "Bob": "pick up dish"})
    assert [p.position for p in env.state.players] == [(10, 2), (11, 2)]
    env.step({"Alice": "put onion in pot", "Bob": "wait"})
    (feedback,) = env.last_feedback
    assert feedback.agent == "Alice" and feedback.kind == "execution"
    assert "blocked by Bob at (2, 11)" in feedback.message
    assert env.last_ticks < 15
    assert env.state.players[0].held_object.name == "onion"
