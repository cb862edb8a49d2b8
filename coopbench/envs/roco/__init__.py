"""RoCo-style multi-robot tabletop in 2D (pymunk): Sweep Floor, Make Sandwich, Sort Cubes.

Modules: `arm` (planar arms, FK/IK with limits, paths), `world` (the pymunk scene, grasps,
collision queries, motion), `base` (verification in RoCo's order, execution, rewinds),
`sweep` / `sandwich` / `sort` (the tasks), `render` (Pillow drawing), `film` (motion GIFs),
`registration` (the `roco/...` ids). See docs/roco.md.
"""
