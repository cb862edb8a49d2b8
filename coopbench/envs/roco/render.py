"""Headless top-down drawing of a roco scene with Pillow: table, fixtures, objects, arms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymunk
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from coopbench.envs.roco.base import RocoEnv

SCALE = 4.0  # pixels per cm
MARGIN = 18.0  # cm around the table, where the robot bases stand
ARM_COLOURS = {
    "Alice": (200, 70, 60),
    "Bob": (60, 120, 200),
    "Chad": (70, 160, 90),
    "Dave": (150, 90, 180),
}


def draw(env: RocoEnv) -> np.ndarray:
    """The scene as an (H, W, 3) uint8 array; y points up on the table, so rows are flipped."""
    w, h = env.size
    width, height = int((w + 2 * MARGIN) * SCALE), int((h + 2 * MARGIN) * SCALE)

    def px(p) -> tuple[float, float]:
        return ((p[0] + MARGIN) * SCALE, height - (p[1] + MARGIN) * SCALE)

    image = Image.new("RGB", (width, height), (245, 242, 235))
    pen = ImageDraw.Draw(image)
    pen.rectangle([px((0, h)), px((w, 0))], fill=(214, 190, 150), outline=(150, 120, 80))
    for kind, geometry, colour, label in env.decorations():
        if kind == "rect":
            x0, y0, x1, y1 = geometry
            pen.rectangle([px((x0, y1)), px((x1, y0))], fill=colour, outline=(90, 90, 90))
            centre = px(((x0 + x1) / 2, (y0 + y1) / 2))
        else:
            (cx, cy), r = geometry
            pen.ellipse([px((cx - r, cy + r)), px((cx + r, cy - r))], fill=colour,
                        outline=(60, 60, 60), width=2)
            centre = px((cx, cy))
        if label:
            pen.text((centre[0] - 3 * len(label), centre[1] - 5), label, fill=(40, 40, 40))
    world = env.world
    order = sorted(world.objects, key=lambda n: (world.is_lifted(n), env.draw_order(n)))
    for name in order:
        body, shape = world.objects[name], world.object_shapes[name]
        fill = env.colour(name)
        if isinstance(shape, pymunk.Circle):
            c, r = body.position, shape.radius
            pen.ellipse([px((c.x - r, c.y + r)), px((c.x + r, c.y - r))], fill=fill,
                        outline=(40, 40, 40))
        else:
            points = [px(body.local_to_world(v)) for v in shape.get_vertices()]
            pen.polygon(points, fill=fill, outline=(40, 40, 40))
    for agent, arm in world.arms.items():
        colour = ARM_COLOURS.get(agent, (90, 90, 90))
        bx, by = arm.spec.base
        pen.rectangle([px((bx - 4, by + 4)), px((bx + 4, by - 4))], fill=(70, 70, 70))
        for body, shape in zip(arm.bodies, arm.link_shapes, strict=True):
            a, b = body.local_to_world(shape.a), body.local_to_world(shape.b)
            pen.line([px(a), px(b)], fill=colour, width=int(2 * shape.radius * SCALE))
            pen.ellipse([px((a.x - 1.5, a.y + 1.5)), px((a.x + 1.5, a.y - 1.5))], fill=(30, 30, 30))
        tool_colour = (40, 40, 40) if arm.lowered else tuple(min(255, c + 60) for c in colour)
        for shape in arm.tool_shapes:
            body = shape.body
            if isinstance(shape, pymunk.Circle):
                c = body.local_to_world(shape.offset)
                r = shape.radius
                pen.ellipse([px((c.x - r, c.y + r)), px((c.x + r, c.y - r))],
                            outline=tool_colour, width=3)
            else:
                a, b = body.local_to_world(shape.a), body.local_to_world(shape.b)
                pen.line([px(a), px(b)], fill=tool_colour, width=max(2, int(SCALE * 1.5)))
        pen.text(px((bx - 6, by - 6 if by > h / 2 else by + 9)), agent, fill=(20, 20, 20))
    for agent in world.arms:  # what each tool carries, drawn on top
        for name in world.held(agent):
            body, shape = world.objects[name], world.object_shapes[name]
            if not isinstance(shape, pymunk.Circle):
                points = [px(body.local_to_world(v)) for v in shape.get_vertices()]
                pen.polygon(points, fill=env.colour(name), outline=(0, 0, 0))
    pen.text((6, 4), f"{env.task} {env.level}  step {env.steps_taken}", fill=(20, 20, 20))
    return np.asarray(image, dtype=np.uint8)
