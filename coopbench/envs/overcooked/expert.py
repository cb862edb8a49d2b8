"""A scripted greedy pair: each agent picks the most useful feasible skill for the team.

Decisions are made for Alice first, then for Bob knowing Alice's claim (so both do not fetch
the last onion a pot needs, or two dishes for one soup). Items an agent cannot take where they
are needed (Forced Coordination) are handed over on a counter both can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from coopbench.envs.overcooked import skills as sk
from coopbench.envs.overcooked.kitchen import Kitchen, held, pot_soup, pot_status


@dataclass
class _Claims:
    ingredients: int = 0
    dishes: int = 0
    cook: bool = False


def choose(kitchen: Kitchen, state, vocab: dict[tuple, sk.Skill]) -> list[sk.Skill]:
    """The greedy skill of each agent in `state` (Alice, Bob)."""
    claims = _Claims()
    return [_choose_one(kitchen, state, i, vocab, claims) for i in (0, 1)]


def _choose_one(kitchen: Kitchen, state, i: int, vocab, claims: _Claims) -> sk.Skill:
    me, partner = state.players[i], state.players[1 - i]
    start = me.pos_and_or
    hand = held(me)

    def reach(pos) -> bool:
        return kitchen.can_reach(start, pos)

    def partner_reach(pos) -> bool:
        return kitchen.can_reach(partner.pos_and_or, pos)

    def skill(kind, arg=None) -> sk.Skill:
        return vocab[(kind, arg)]

    def handover() -> sk.Skill | None:
        """Put the held item on the nearest free counter the partner can also reach.

        Ingredients never take the last free shared counter: a soup or dish may need it to
        come back the other way."""
        free = [k for k, c in enumerate(kitchen.counters)
                if c not in state.objects and reach(c) and partner_reach(c)]
        if not free or (len(free) == 1 and hand not in ("soup", "dish")):
            return None

        def cost(k: int) -> int:
            c = kitchen.counters[k]
            return (kitchen.goals(start, [c])[0][0]
                    + kitchen.goals(partner.pos_and_or, [c])[0][0])

        best = min(free, key=cost)
        return skill("place", best)

    def park() -> sk.Skill | None:
        """Free the hands: the held item goes on the nearest free counter."""
        free = [k for k, c in enumerate(kitchen.counters) if c not in state.objects and reach(c)]
        if not free:
            return None
        nearest = min(free, key=lambda k: kitchen.goals(start, [kitchen.counters[k]])[0][0])
        return skill("place", nearest)

    def counter_items(name: str) -> list[int]:
        return [k for k, c in enumerate(kitchen.counters)
                if c in state.objects and state.objects[c].name == name and reach(c)]

    need = len(kitchen.recipe)
    statuses = {p: pot_status(state, p) for p in kitchen.pots}
    my_pots = [p for p in kitchen.pots if reach(p)]
    on_counters = [o.name for pos, o in state.objects.items() if pos not in statuses]
    ingredient = kitchen.recipe[0]
    pipeline = (int(held(partner) == ingredient) + on_counters.count(ingredient)
                + claims.ingredients + int(hand == ingredient))
    # Soups that will need a dish: cooking or ready, or fillable from ingredients on the way.
    soups_coming = sum(1 for s in statuses.values() if s in ("cooking", "ready"))
    fill = sorted((len(pot_soup(state, p).ingredients) if pot_soup(state, p) else 0
                   for p, s in statuses.items() if s in ("empty", "filling")), reverse=True)
    spare = pipeline
    for count in fill:
        short = max(need - count, 0)
        if short <= spare:
            soups_coming += 1
            spare -= short
        else:
            break
    dishes_around = (on_counters.count("dish") + (held(partner) == "dish") + claims.dishes)
    missing = sum(max(need - count, 0) for count in fill) - pipeline

    if hand == "soup":
        if any(reach(s) for s in kitchen.mdp.get_serving_locations()):
            return skill("serve")
        return handover() or skill("wait")
    if hand == "dish":
        if any(statuses[p] in ("cooking", "ready") for p in my_pots):
            return skill("plate")
        if not my_pots:
            return handover() or skill("wait")
        if not any(partner_reach(p) for p in kitchen.pots):  # only I can fill the pots
            return park() or skill("wait")
        return skill("wait")
    if hand is not None:  # an ingredient
        usable = [p for p in my_pots if statuses[p] in ("empty", "filling")
                  and not (pot_soup(state, p) and pot_soup(state, p).is_full)
                  and (pot_soup(state, p) is None
                       or len(pot_soup(state, p).ingredients) < need)]
        if usable and ("put", hand) in vocab:
            return skill("put", hand)
        if not my_pots:
            return handover() or skill("wait")
        if not any(partner_reach(p) for p in kitchen.pots):  # only I can plate: hands free
            return park() or skill("wait")
        return skill("wait")

    # Empty hands.
    soups = counter_items("soup")
    if soups and any(reach(s) for s in kitchen.mdp.get_serving_locations()):
        return skill("take", soups[0])
    ready_to_cook = [p for p in my_pots if statuses[p] == "filling"
                     and len(pot_soup(state, p).ingredients) >= need]
    if ready_to_cook and not claims.cook:
        claims.cook = True
        return skill("cook")
    if soups_coming > dishes_around:
        taking = counter_items("dish")
        if taking and my_pots:  # already counted among the dishes around
            return skill("take", taking[0])
        if any(reach(d) for d in kitchen.dispensers("dish")):
            claims.dishes += 1
            return skill("pickup", "dish")
    if missing > 0:
        taking = counter_items(ingredient)
        if taking and my_pots:  # already counted in the pipeline
            return skill("take", taking[0])
        if any(reach(d) for d in kitchen.dispensers(ingredient)):
            claims.ingredients += 1
            return skill("pickup", ingredient)
    if my_pots:  # help: fetch from a hand-over counter even if not strictly needed yet
        cooking = any(s in ("cooking", "ready") for s in statuses.values())
        for name in (ingredient, "dish") if cooking else (ingredient,):
            taking = counter_items(name)
            if taking:
                return skill("take", taking[0])
    return skill("wait")
