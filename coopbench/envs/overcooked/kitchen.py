"""Static facts about one layout plus state queries that skills, text and the expert share.

Positions inside overcooked-ai are (x, y) = (col, row); everything shown to users and LLMs is
(row, col). `rc()` converts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

from coopbench.envs.overcooked import cache
from coopbench.envs.overcooked.upstream import Direction, OCAction

Pos = tuple[int, int]
PosOr = tuple[Pos, Pos]

DIRECTION_NAMES = {
    Direction.NORTH: "north",
    Direction.SOUTH: "south",
    Direction.EAST: "east",
    Direction.WEST: "west",
}
TERRAIN_NAMES = {
    "X": "counter",
    "P": "pot",
    "O": "onion dispenser",
    "T": "tomato dispenser",
    "D": "dish dispenser",
    "S": "serving window",
    " ": "floor",
}


def rc(pos: Pos) -> tuple[int, int]:
    """(x, y) -> (row, col)."""
    return (pos[1], pos[0])


def fmt(pos: Pos) -> str:
    return f"({pos[1]}, {pos[0]})"


@dataclass
class Kitchen:
    """One layout's geometry and the overcooked-ai motion planner that moves agents in it."""

    mdp: object
    _reach: dict = field(default_factory=dict, repr=False)

    @cached_property
    def counters(self) -> list[Pos]:
        """Counters an agent can stand next to, in (row, col) order: `counter k` is index k."""
        valid = set(self.mdp.get_valid_player_positions())
        usable = [
            c for c in self.mdp.get_counter_locations()
            if any(OCAction.move_in_direction(c, d) in valid for d in Direction.ALL_DIRECTIONS)
        ]
        return sorted(usable, key=rc)

    @cached_property
    def mp(self):
        return cache.motion_planner(self.mdp, self.counters)

    @cached_property
    def pots(self) -> list[Pos]:
        return sorted(self.mdp.get_pot_locations(), key=rc)

    @cached_property
    def pot_set(self) -> frozenset[Pos]:
        return frozenset(self.pots)

    @cached_property
    def valid_positions(self) -> frozenset[Pos]:
        return frozenset(self.mdp.get_valid_player_positions())

    @cached_property
    def recipe(self) -> list[str]:
        """Ingredients of the soup the scripted expert cooks: the layout's first order."""
        orders = self.mdp.start_all_orders
        if orders:
            return list(orders[0]["ingredients"])
        return ["onion"] * 3

    @cached_property
    def ingredients(self) -> list[str]:
        out = []
        if self.mdp.get_onion_dispenser_locations():
            out.append("onion")
        if self.mdp.get_tomato_dispenser_locations():
            out.append("tomato")
        return out

    def dispensers(self, item: str) -> list[Pos]:
        return {
            "onion": self.mdp.get_onion_dispenser_locations,
            "tomato": self.mdp.get_tomato_dispenser_locations,
            "dish": self.mdp.get_dish_dispenser_locations,
        }[item]()

    # -- motion ---------------------------------------------------------------------------

    def goals(self, start: PosOr, targets: list[Pos]) -> list[tuple[int, PosOr]]:
        """(cost, motion goal) pairs from `start` to face any of `targets`, cheapest first."""
        plans = self.mp.all_plans
        out = []
        for t in targets:
            for goal in self.mp.motion_goals_for_pos.get(t, ()):
                plan = plans.get((start, goal))
                if plan is not None:
                    out.append((plan[2], goal))
        out.sort()
        return out

    def can_reach(self, start: PosOr, target: Pos) -> bool:
        key = (start[0], target)
        if key not in self._reach:
            self._reach[key] = bool(self.goals(start, [target]))
        return self._reach[key]

    def first_action(self, start: PosOr, goal: PosOr):
        return self.mp.get_plan(start, goal)[0][0]

    def detour(self, start: Pos, goal_cells: set[Pos], blocked: Pos) -> Pos | None:
        """First move direction of a shortest path from `start` to `goal_cells` avoiding
        `blocked` (the partner's cell), or None. Used only to step around the partner."""
        if start in goal_cells:
            return None
        seen = {start: None}
        queue = deque([start])
        while queue:
            cur = queue.popleft()
            for d in Direction.ALL_DIRECTIONS:
                nxt = OCAction.move_in_direction(cur, d)
                if nxt in seen or nxt == blocked or nxt not in self.valid_positions:
                    continue
                seen[nxt] = d if cur == start else seen[cur]
                if nxt in goal_cells:
                    return seen[nxt]
                queue.append(nxt)
        return None

    def free_neighbours(self, pos: Pos, avoid: set[Pos]) -> list[Pos]:
        """Directions from `pos` into walkable cells not in `avoid`."""
        out = []
        for d in Direction.ALL_DIRECTIONS:
            nxt = OCAction.move_in_direction(pos, d)
            if nxt in self.valid_positions and nxt not in avoid:
                out.append(d)
        return out


def held(player) -> str | None:
    obj = player.held_object
    return None if obj is None else obj.name


def pot_soup(state, pos: Pos):
    """The soup in the pot at `pos`, or None if it is empty."""
    obj = state.objects.get(pos)
    return obj if obj is not None and obj.name == "soup" else None


def pot_status(state, pos: Pos) -> str:
    """"empty" | "filling" | "cooking" | "ready"."""
    soup = pot_soup(state, pos)
    if soup is None:
        return "empty"
    if soup.is_ready:
        return "ready"
    if soup.is_cooking:
        return "cooking"
    return "filling"
