"""Fixed-size numeric views of an Overcooked state for critics and RL.

`compact()` is coopbench's own 39-number vector (documented in `FEATURE_NAMES`, all values in
[0, 1]); the same layout serves as `features()` (Alice first) and as the default per-agent
observation (the observing agent first). `lossless` and `featurized` observations are
overcooked-ai's own encodings.
"""

from __future__ import annotations

import numpy as np

from coopbench.envs.overcooked.kitchen import Kitchen

FEATURES_VERSION = "1"
HELD = ("onion", "tomato", "dish", "soup")
_FACING = {(0, -1): 0, (0, 1): 1, (1, 0): 2, (-1, 0): 3}
MAX_POTS = 2
SOUP_SCALE = 20  # delivered soups are reported as min(n, 20) / 20

FEATURE_NAMES: list[str] = []
for _who in ("self", "partner"):
    FEATURE_NAMES += [f"{_who}.row", f"{_who}.col"]
    FEATURE_NAMES += [f"{_who}.facing_{d}" for d in ("north", "south", "east", "west")]
    FEATURE_NAMES += [f"{_who}.holds_nothing"] + [f"{_who}.holds_{h}" for h in HELD]
for _k in range(MAX_POTS):
    FEATURE_NAMES += [f"pot{_k}.exists", f"pot{_k}.onions", f"pot{_k}.tomatoes",
                      f"pot{_k}.cooking", f"pot{_k}.ready", f"pot{_k}.cook_remaining"]
FEATURE_NAMES += ["counters.onions", "counters.dishes", "counters.soups", "soups_delivered",
                  "time"]
N_FEATURES = len(FEATURE_NAMES)  # 39
#: What `held_soups` appends for obs_type "compact_soup" (the observing agent first).
HELD_SOUP_NAMES = [f"{who}.soup_{i}" for who in ("self", "partner")
                   for i in ("onions", "tomatoes")]
#: Index map that turns Alice's view into Bob's (swap the `self` and `partner` slots).
SWAP = np.r_[11:22, 0:11, 22:N_FEATURES]


def _player(player, height: int, width: int) -> list[float]:
    x, y = player.position
    out = [0.0] * 11
    out[0] = y / max(height - 1, 1)
    out[1] = x / max(width - 1, 1)
    out[2 + _FACING[player.orientation]] = 1.0
    obj = player.held_object
    out[6 + (0 if obj is None else 1 + HELD.index(obj.name))] = 1.0
    return out


def compact(kitchen: Kitchen, state, soups: int, time: float, first: int = 0) -> np.ndarray:
    """The 39-number vector with player `first` in the `self` slots."""
    mdp = kitchen.mdp
    players = state.players
    vec = _player(players[first], mdp.height, mdp.width) + \
        _player(players[1 - first], mdp.height, mdp.width)
    objects = state.objects
    pots = kitchen.pots
    for k in range(MAX_POTS):
        if k >= len(pots):
            vec += [0.0] * 6
            continue
        soup = objects.get(pots[k])
        if soup is None:
            vec += [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            continue
        names = [i.name for i in soup._ingredients]
        tick = soup._cooking_tick
        if tick < 0:
            vec += [1.0, names.count("onion") / 3, names.count("tomato") / 3, 0.0, 0.0, 0.0]
            continue
        total = soup.cook_time
        ready = tick >= total
        remaining = 0.0 if ready else (total - tick) / max(total, 1)
        vec += [1.0, names.count("onion") / 3, names.count("tomato") / 3,
                0.0 if ready else 1.0, 1.0 if ready else 0.0, remaining]
    onions = dishes = soups_out = 0
    pot_set = kitchen.pot_set
    for pos, obj in objects.items():
        if pos in pot_set:
            continue
        if obj.name == "onion":
            onions += 1
        elif obj.name == "dish":
            dishes += 1
        elif obj.name == "soup":
            soups_out += 1
    n = max(len(kitchen.counters), 1)
    vec += [onions / n, dishes / n, soups_out / n, min(soups, SOUP_SCALE) / SOUP_SCALE,
            min(time, 1.0)]
    return np.asarray(vec, dtype=np.float32)


def held_soups(state, first: int = 0) -> np.ndarray:
    """Ingredients (/3) of the soup each player holds, player `first` first (zeros if none).

    Why: `compact` says that a player holds a soup, not which one. A learned potential or
    policy then cannot tell a recipe soup (worth a delivery) from a wrong one (worth nothing).
    """
    vec: list[float] = []
    for player in (state.players[first], state.players[1 - first]):
        obj = player.held_object
        names = [i.name for i in obj._ingredients] if obj is not None and obj.name == "soup" \
            else []
        vec += [names.count("onion") / 3, names.count("tomato") / 3]
    return np.asarray(vec, dtype=np.float32)
