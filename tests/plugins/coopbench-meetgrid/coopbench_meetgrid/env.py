"""Meet in the middle: Alice and Bob start in opposite corners and must share a cell."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from coopbench.core.types import Action, Feedback
from coopbench.envs import VocabularyEnv

MOVES = {"move north": (-1, 0), "move south": (1, 0), "move east": (0, 1), "move west": (0, -1)}
VOCABULARY = [*MOVES, "wait"]


class MeetGridEnv(VocabularyEnv):
    metadata = {"name": "meetgrid_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}
    possible_agents = ["Alice", "Bob"]

    def __init__(self, size: int = 5, max_steps: int = 12, render_mode: str | None = None):
        super().__init__(render_mode)
        self.size = size
        self.max_steps = max_steps
        self.pos: dict[str, tuple[int, int]] = {}

    # -- actions --------------------------------------------------------------------------
    def vocabulary(self, agent):
        return VOCABULARY

    def legal_indices(self, agent):
        row, col = self.pos[agent]
        legal = []
        for i, (dr, dc) in enumerate(MOVES.values()):
            if 0 <= row + dr < self.size and 0 <= col + dc < self.size:
                legal.append(i)
        return [*legal, len(MOVES)]

    def wait_index(self, agent):
        return len(MOVES)

    def text_aliases(self, agent):
        return {word: f"move {word}" for word in ("north", "south", "east", "west")}

    # -- dynamics -------------------------------------------------------------------------
    def _reset(self, seed, options):
        corner = self.size - 1
        self.pos = {"Alice": (0, 0), "Bob": (corner, corner)}
        if options and options.get("random_start"):
            for agent in self.possible_agents:
                self.pos[agent] = tuple(int(x) for x in self.np_random.integers(self.size, size=2))

    def _apply(self, joint: dict[str, Action]):
        feedback = []
        for agent, action in joint.items():
            if action.index not in self.legal_indices(agent):
                feedback.append(Feedback(agent, "execution", f"{agent} bumped into the wall."))
                continue
            if action.text in MOVES:
                dr, dc = MOVES[action.text]
                row, col = self.pos[agent]
                self.pos[agent] = (row + dr, col + dc)
        return (1.0 if self.success() else 0.0), feedback

    def success(self):
        return self.pos["Alice"] == self.pos["Bob"]

    # -- numbers --------------------------------------------------------------------------
    def _observation_space(self, agent):
        return spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)

    def observe(self, agent):
        return self.features()

    def features(self):
        scale = max(self.size - 1, 1)
        return np.array([*self.pos["Alice"], *self.pos["Bob"]], dtype=np.float32) / scale

    # -- language -------------------------------------------------------------------------
    def task_prompt(self):
        return (
            f"Alice and Bob are on a {self.size}x{self.size} grid (row 0 is north). "
            "They succeed when both stand on the same cell. "
            f"Each agent's actions: {', '.join(VOCABULARY)}."
        )

    def describe(self, agent=None):
        return "\n".join(f"{a} is at (row {r}, col {c})." for a, (r, c) in self.pos.items())

    # -- state and expert -----------------------------------------------------------------
    def _snapshot_state(self):
        return dict(self.pos)

    def _restore_state(self, state):
        self.pos = dict(state)

    def expert_joint(self):
        """Both close the gap by one cell a step (the fewest steps there are), never swapping."""
        (ar, ac), (br, bc) = self.pos["Alice"], self.pos["Bob"]
        rows, cols = abs(ar - br), abs(ac - bc)
        alice = "rows" if rows else "cols"
        bob = "rows" if rows >= 2 or (rows == 1 and not cols) else "cols"
        if rows + cols == 1:
            bob = "wait"  # adjacent: one steps, the other waits
        joint = {}
        for agent, axis, (r, c), (tr, tc) in (("Alice", alice, (ar, ac), (br, bc)),
                                              ("Bob", bob, (br, bc), (ar, ac))):
            if axis == "rows" and r != tr:
                text = "move south" if tr > r else "move north"
            elif axis == "cols" and c != tc:
                text = "move east" if tc > c else "move west"
            else:
                text = "wait"
            joint[agent] = self.parse(agent, text)
        return joint

    def render(self):
        cell = 16
        image = np.full((self.size * cell, self.size * cell, 3), 255, dtype=np.uint8)
        for agent, colour in (("Alice", (220, 60, 60)), ("Bob", (60, 60, 220))):
            r, c = self.pos[agent]
            image[r * cell + 3 : (r + 1) * cell - 3, c * cell + 3 : (c + 1) * cell - 3] = colour
        return image
