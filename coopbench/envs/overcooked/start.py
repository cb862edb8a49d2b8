"""Start states: the layout's fixed one, or one drawn from the reset seed.

A seeded start keeps the layout's structure: each player starts on a floor tile of the region
it can walk to from its standard start (on Forced Coordination the two halves stay apart, so
the task still needs hand-overs), the two players on distinct tiles, each facing one of the
four directions. Pots, counters and orders are as in the standard start (empty).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from coopbench.envs.overcooked.kitchen import Kitchen, Pos, rc
from coopbench.envs.overcooked.upstream import Direction, OCAction, OvercookedState

STARTS = ("fixed", "seeded")


def region(kitchen: Kitchen, start: Pos) -> list[Pos]:
    """Floor tiles reachable from `start` by walking, in (row, col) order."""
    seen = {start}
    queue = deque([start])
    while queue:
        pos = queue.popleft()
        for d in Direction.ALL_DIRECTIONS:
            nxt = OCAction.move_in_direction(pos, d)
            if nxt in kitchen.valid_positions and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return sorted(seen, key=rc)


def seeded_start(mdp, kitchen: Kitchen, rng: np.random.Generator) -> OvercookedState:
    """Both players on distinct tiles of their own start regions, facing random directions."""
    taken: list[Pos] = []
    players = []
    for home in mdp.start_player_positions:
        tiles = [p for p in region(kitchen, home) if p not in taken]
        pos = tiles[int(rng.integers(len(tiles)))]
        facing = Direction.ALL_DIRECTIONS[int(rng.integers(len(Direction.ALL_DIRECTIONS)))]
        taken.append(pos)
        players.append((pos, facing))
    return OvercookedState.from_players_pos_and_or(
        players, bonus_orders=mdp.start_bonus_orders, all_orders=mdp.start_all_orders)
