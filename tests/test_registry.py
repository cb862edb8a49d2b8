import pytest

from coopbench import envs, planners
from coopbench.core.errors import CoopbenchError, UnknownIdError
from coopbench.core.registry import Registry


class Thing:
    def __init__(self, size=1, colour="red"):
        self.size, self.colour = size, colour


def fresh() -> Registry:
    registry = Registry("thing", "coopbench.tests.none")
    registry.register("toy/box-v0", Thing, description="old box", size=1)
    registry.register("toy/box-v1", Thing, description="new box", size=2)
    registry.register("toy/ball-v0", f"{__name__}:Thing", colour="blue")
    return registry


def test_make_applies_defaults_then_overrides():
    registry = fresh()
    box = registry.make("toy/box-v0", colour="green")
    assert (box.size, box.colour) == (1, "green")
    assert box.spec.id == "toy/box-v0"


def test_unversioned_id_resolves_to_the_newest_version():
    assert fresh().make("toy/box").size == 2


def test_short_name_resolves_when_unambiguous():
    registry = fresh()
    assert registry.spec("ball-v0").id == "toy/ball-v0"
    assert registry.spec("box").id == "toy/box-v1"


def test_string_entry_points_import_lazily():
    registry = fresh()
    registry.register("toy/ghost-v0", "coopbench_no_such_module:Ghost")
    assert "toy/ghost-v0" in registry.ids()  # listing imports nothing
    with pytest.raises(CoopbenchError, match="cannot import 'coopbench_no_such_module'"):
        registry.make("toy/ghost-v0")


def test_unknown_id_names_the_closest_ids():
    with pytest.raises(UnknownIdError) as info:
        fresh().spec("toy/bx-v1")
    message = str(info.value)
    assert "toy/box-v1" in message and "unknown thing id 'toy/bx-v1'" in message


def test_unknown_family_still_gets_a_useful_message():
    with pytest.raises(UnknownIdError, match="unknown thing id 'nope/missing-v0'"):
        fresh().spec("nope/missing-v0")


@pytest.mark.parametrize("bad", ["box", "toy/box", "toy/box-1", "Toy Box-v0", "/box-v0"])
def test_ids_must_be_versioned(bad):
    with pytest.raises(CoopbenchError, match="family/name-vN"):
        Registry("thing", "g").register(bad, Thing)


def test_builtin_planners_are_registered():
    ids = planners.registry.ids()
    assert "baseline/random-v0" in ids and "baseline/expert-v0" in ids
    assert planners.registry.spec("random-v0").caps.needs_llm is False


def test_plugin_is_discovered_through_its_entry_point(meetgrid):
    spec = envs.registry.spec("meetgrid/meet-v0")
    assert spec.source == "coopbench-meetgrid"
    env = envs.make("meetgrid/meet-v0", size=4)
    assert env.size == 4 and env.spec.id == "meetgrid/meet-v0"
    assert planners.registry.spec("meetgrid/walker-v0").source == "coopbench-meetgrid"
