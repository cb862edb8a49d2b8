"""The bottom layer: types, errors, the registry and file I/O that every other part uses.

Nothing here imports from the rest of coopbench (a test enforces it), so any part may import
from here without creating a circle.
"""
