"""Headless RGB rendering with Pillow (no pygame window, no display needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from coopbench.envs.overcooked.kitchen import Kitchen, pot_soup, pot_status

CELL = 32
TERRAIN_COLOURS = {
    " ": (235, 230, 220), "X": (170, 130, 90), "P": (80, 80, 80), "O": (240, 200, 60),
    "T": (220, 70, 60), "D": (200, 200, 230), "S": (90, 170, 90),
}
ITEM_COLOURS = {"onion": (240, 200, 60), "tomato": (220, 70, 60), "dish": (250, 250, 250),
                "soup": (230, 130, 40)}
AGENT_COLOURS = ((210, 60, 60), (60, 90, 210))


def render(kitchen: Kitchen, state) -> np.ndarray:
    """An (H*32, W*32, 3) uint8 picture of the state."""
    mdp = kitchen.mdp
    image = Image.new("RGB", (mdp.width * CELL, mdp.height * CELL))
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(mdp.terrain_mtx):
        for x, t in enumerate(row):
            box = (x * CELL, y * CELL, (x + 1) * CELL - 1, (y + 1) * CELL - 1)
            draw.rectangle(box, fill=TERRAIN_COLOURS.get(t, (0, 0, 0)), outline=(60, 50, 40))
    for pos in kitchen.pots:
        soup = pot_soup(state, pos)
        if soup is None:
            continue
        x, y = pos
        for k, name in enumerate(soup.ingredients):
            cx = x * CELL + 7 + 9 * k
            draw.ellipse((cx - 3, y * CELL + 5, cx + 3, y * CELL + 11), fill=ITEM_COLOURS[name])
        status = pot_status(state, pos)
        if status in ("cooking", "ready"):
            frac = 1.0 if status == "ready" else soup._cooking_tick / max(soup.cook_time, 1)
            draw.rectangle((x * CELL + 3, y * CELL + 24, x * CELL + 3 + int(26 * frac),
                            y * CELL + 28), fill=(90, 200, 90) if status == "ready"
                           else (230, 130, 40))
    for pos, obj in state.objects.items():
        if pos in kitchen.pot_set:
            continue
        _item(draw, pos, obj.name, CELL // 2)
    for i, p in enumerate(state.players):
        x, y = p.position
        cx, cy = x * CELL + CELL // 2, y * CELL + CELL // 2
        draw.ellipse((cx - 11, cy - 11, cx + 11, cy + 11), fill=AGENT_COLOURS[i])
        dx, dy = p.orientation
        draw.line((cx, cy, cx + 14 * dx, cy + 14 * dy), fill=(20, 20, 20), width=3)
        if p.held_object is not None:
            _item(draw, p.position, p.held_object.name, 12, offset=(8, 8))
    return np.asarray(image, dtype=np.uint8)


def _item(draw, pos, name, size, offset=(0, 0)) -> None:
    x, y = pos
    cx, cy = x * CELL + CELL // 2 + offset[0], y * CELL + CELL // 2 + offset[1]
    r = size // 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ITEM_COLOURS.get(name, (0, 0, 0)),
                 outline=(40, 40, 40))
