"""Make Sandwich (RoCo / DV-RoCoBench): two arms stack a recipe on the cutting board.

Dave (gripper, left edge) reaches the foods on the left side, Chad (suction, right edge) those
on the right; both reach the cutting board in the middle. Actions: `PICK <food>`,
`PUT <food> <food|cutting_board|table>`, `WAIT`; only one robot may PUT per round. Each robot
sees only the foods on its own side and the board. Recipes 1-4 have 3, 5, 7 and 9 items;
recipes 1-3 share one layout, recipe 4 uses another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from coopbench.core.types import Action, Feedback, ParseError
from coopbench.envs.roco import arm as kin
from coopbench.envs.roco.base import Move, Phase, RocoEnv, fmt

BOARD = (64.0, 40.0)
BOARD_HALF = (11.0, 8.0)
LEFT = [(16.0, 12.0), (32.0, 12.0), (44.0, 28.0), (44.0, 52.0), (32.0, 68.0), (16.0, 68.0)]
RIGHT = [(128.0 - x, y) for x, y in LEFT]


def _box(w: float, h: float) -> list[kin.Point]:
    return [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]


def _disc(r: float, n: int = 10) -> list[kin.Point]:
    step = 2 * math.pi / n
    return [(r * math.cos(k * step), r * math.sin(k * step)) for k in range(n)]


FOODS = {  # kind -> (polygon, colour)
    "bread_slice": (_box(9, 9), (222, 184, 120)),
    "bacon": (_box(11, 3.5), (200, 80, 70)),
    "cheese": (_box(8, 8), (250, 215, 70)),
    "tomato": (_disc(4.0), (225, 50, 40)),
    "cucumber": (_disc(3.5), (90, 170, 70)),
    "ham": (_disc(4.5), (240, 150, 150)),
    "lettuce": (_disc(4.5, 7), (130, 200, 90)),
    "beef_patty": (_disc(4.5), (110, 70, 50)),
}
LAYOUT_A = {  # recipes 1-3
    "bread_slice1": LEFT[0], "bacon": LEFT[2], "cheese": LEFT[3], "bread_slice2": LEFT[4],
    "tomato": RIGHT[0], "cucumber": RIGHT[2], "ham": RIGHT[3], "lettuce": RIGHT[4],
    "beef_patty": RIGHT[5],
}
LAYOUT_B = {  # recipe 4
    "bread_slice1": LEFT[0], "cheese": LEFT[1], "cucumber1": LEFT[2], "beef_patty1": LEFT[3],
    "bread_slice2": LEFT[4], "tomato1": LEFT[5],
    "tomato2": RIGHT[0], "beef_patty2": RIGHT[1], "ham": RIGHT[2], "bacon": RIGHT[3],
    "cucumber2": RIGHT[4],
}
RECIPES = {
    "recipe1": (LAYOUT_A, ["bread_slice1", "ham", "bread_slice2"]),
    "recipe2": (LAYOUT_A, ["bread_slice1", "tomato", "bacon", "ham", "bread_slice2"]),
    "recipe3": (
        LAYOUT_A,
        ["bread_slice1", "tomato", "bacon", "cucumber", "cheese", "ham", "bread_slice2"],
    ),
    "recipe4": (
        LAYOUT_B,
        ["bread_slice1", "tomato2", "cheese", "beef_patty2", "ham", "cucumber1", "bacon",
         "beef_patty1", "bread_slice2"],
    ),
}
SIDE = {"Dave": "left", "Chad": "right"}
MAX_FOODS = 11
CONTACT = 6.0  # cm between stacked items' centres that still counts as touching


def kind_of(food: str) -> str:
    return food.rstrip("0123456789")


class MakeSandwichEnv(RocoEnv):
    """`roco/sandwich-recipeN-v0`."""

    task = "sandwich"
    levels = tuple(RECIPES)
    possible_agents = ["Chad", "Dave"]
    size = (128.0, 80.0)

    @property
    def layout(self) -> dict[str, kin.Point]:
        return RECIPES[self.level][0]

    @property
    def recipe(self) -> list[str]:
        return RECIPES[self.level][1]

    @property
    def foods(self) -> list[str]:
        return list(self.layout)

    def arm_specs(self) -> list[kin.ArmSpec]:
        lengths = (36.0, 32.0, 8.0)
        return [
            kin.make_spec("Chad", (132.0, 40.0), 180.0, lengths, "suction", (108.0, 40.0),
                          (54.0, 128.0, 0.0, 80.0)),
            kin.make_spec("Dave", (-4.0, 40.0), 0.0, lengths, "gripper", (20.0, 40.0),
                          (0.0, 74.0, 0.0, 80.0)),
        ]

    def _build_scene(self) -> None:
        for food, spot in self.layout.items():
            pos, angle = self._jittered(spot)
            self.world.add_object(food, FOODS[kind_of(food)][0], pos, angle)
        self.state["stack"] = []

    # -- vocabulary ------------------------------------------------------------------------

    def vocabulary(self, agent: str) -> list[str]:
        targets = [*self.foods, "cutting_board", "table"]
        return (
            [f"PICK {f}" for f in self.foods]
            + [f"PUT {f} {t}" for f in self.foods for t in targets if t != f]
            + ["WAIT"]
        )

    def wait_index(self, agent: str) -> int:
        return len(self.vocabulary(agent)) - 1

    def extra_names(self) -> list[str]:
        return ["cutting_board"]

    def side_of(self, food: str) -> str:
        return "left" if self.world.position(food)[0] < BOARD[0] else "right"

    def holder(self, food: str) -> str | None:
        return next((a for a in self.possible_agents if food in self.world.held(a)), None)

    def on_own_side(self, agent: str, food: str) -> bool:
        return (
            food not in self.state["stack"]
            and self.holder(food) is None
            and self.side_of(food) == SIDE[agent]
        )

    def _single_ok(self, agent: str, action: Action) -> bool:
        words = action.text.split()
        held = self.world.held(agent)
        if words[0] == "PICK":
            return not held and self.on_own_side(agent, words[1])
        if words[0] == "PUT":
            return held == [words[1]] and not self._put_problem(agent, words[1], words[2])
        return True

    def legal_indices(self, agent: str) -> list[int]:
        vocab = self.vocabulary(agent)
        return [i for i, t in enumerate(vocab) if self._single_ok(agent, self.action(agent, i))]

    def _canonical(self, agent: str, text: str) -> str:
        words = [w for w in text.split() if w not in ("on", "onto", "on_top_of", "top", "of",
                                                       "the", "to", "in", "into", "a")]
        if not words or words[0] == "wait":
            return "WAIT"
        verb = words[0]
        names = [*self.foods, "cutting_board", "table"]
        if verb in ("pick", "put") and len(words) < (2 if verb == "pick" else 3):
            raise ParseError(
                f"{agent}: {verb.upper()} needs "
                + ("a food: PICK <food>." if verb == "pick" else
                   "a food and a target: PUT <food> <food|cutting_board|table>."),
                agent=agent,
            )
        if verb not in ("pick", "put"):
            raise ParseError(
                f"{agent}: unknown action {verb.upper()!r}; use PICK <food>, "
                "PUT <food> <food|cutting_board|table> or WAIT.",
                agent=agent,
            )
        for word in words[1:]:
            if word not in names:
                raise self.unknown(agent, word, "objects", names)
        food = words[1]
        if food in ("cutting_board", "table"):
            raise ParseError(f"{agent}: {food} cannot be picked or put; name a food.", agent=agent)
        if verb == "pick":
            return f"PICK {food}"
        if food not in self.world.held(agent):
            raise ParseError(
                f"{agent}: cannot PUT {food}: {agent} is not holding it"
                + (f" ({agent} holds {self.world.held(agent)[0]})." if self.world.held(agent)
                   else "; PICK it first."),
                agent=agent,
            )
        return f"PUT {food} {words[2]}"

    # -- rules -----------------------------------------------------------------------------

    def _put_problem(self, agent: str, food: str, target: str) -> str | None:
        stack = self.state["stack"]
        nxt = self.recipe[len(stack)] if len(stack) < len(self.recipe) else None
        if target == "table":
            return None
        if target == "cutting_board":
            if stack:
                return (f"{agent}: the cutting_board already holds {stack[0]}; "
                        f"PUT {food} on top of {stack[-1]} instead.")
            if food != self.recipe[0]:
                return f"{agent}: recipe says {self.recipe[0]} must go on the cutting_board first."
            return None
        if target not in stack:
            return f"{agent}: {target} is not on the cutting_board; stack only on the sandwich."
        if target != stack[-1]:
            return f"{agent}: {target} is not on top; {stack[-1]} is the top of the sandwich."
        if food != nxt:
            return (f"{agent}: recipe says {nxt} must go on {target}, not {food}."
                    if nxt else f"{agent}: the sandwich is complete; nothing more goes on it.")
        return None

    def _constraints(self, joint: Mapping[str, Action]) -> list[Feedback]:
        puts = [a for a, act in joint.items() if act.text.startswith("PUT")]
        if len(puts) > 1:
            return [Feedback(puts[1], "constraint",
                             "Only one robot can PUT at a time: "
                             f"{' and '.join(puts)} both PUT in this round.")]
        feedback = []
        picks = {}
        for agent, action in joint.items():
            words = action.text.split()
            held = self.world.held(agent)
            if words[0] == "PICK":
                food = words[1]
                if food in self.state["stack"]:
                    msg = f"{agent}: cannot PICK {food}, it is already stacked on the sandwich."
                elif held:
                    msg = f"{agent}: already holding {held[0]}; PUT it before picking {food}."
                elif self.holder(food):
                    msg = f"{agent}: {food} is held by {self.holder(food)}."
                elif food in picks.values():
                    msg = f"{agent}: {food} is picked by another robot in this round."
                else:
                    picks[agent] = food
                    continue
                feedback.append(Feedback(agent, "constraint", msg))
            elif words[0] == "PUT":
                if held != [words[1]]:
                    msg = f"{agent}: cannot PUT {words[1]}, {agent} is not holding it."
                else:
                    msg = self._put_problem(agent, words[1], words[2])
                if msg:
                    feedback.append(Feedback(agent, "constraint", msg))
        return feedback

    def _top_point(self) -> kin.Point:
        layer = len(self.state["stack"])
        return (BOARD[0], BOARD[1] - 0.7 * layer)  # drawn a little lower per layer

    def _phases(self, joint: Mapping[str, Action]) -> list[Phase]:
        go: Phase = {}
        home: Phase = {}
        for agent, action in joint.items():
            words = action.text.split()
            if words[0] == "PICK":
                go[agent] = Move(action.text, words[1], self.world.position(words[1]),
                                 op="grasp", obj=words[1])
            elif words[0] == "PUT":
                target = words[2]
                point = self.layout[words[1]] if target == "table" else self._top_point()
                go[agent] = Move(action.text, target, point, op="release", obj=words[1])
            else:
                continue
            home[agent] = Move(action.text, "home", None)
        return [go, home]

    def _arrive(self, agent: str, move: Move) -> str | None:
        if move.op == "grasp":
            self.world.hold(agent, move.obj)
        elif move.op == "release":
            on_stack = move.target != "table"
            self.world.release(agent, onto_table=not on_stack)
            if on_stack:
                self.state["stack"] = [*self.state["stack"], move.obj]
        return None

    # -- success ---------------------------------------------------------------------------

    def units(self) -> list[str]:
        return list(self.recipe)

    def completed(self) -> set[str]:
        """Recipe prefix in contact: bread on the board, each next item on the previous."""
        done: set[str] = set()
        below: kin.Point | None = None
        for name, item in zip(self.recipe, self.state.get("stack", []), strict=False):
            if name != item or self.holder(item):
                break
            x, y = self.world.position(item)
            if below is None:
                ok = abs(x - BOARD[0]) <= BOARD_HALF[0] and abs(y - BOARD[1]) <= BOARD_HALF[1]
            else:
                ok = math.dist((x, y), below) <= CONTACT
            if not ok:
                break
            done.add(item)
            below = (x, y)
        return done

    def features(self) -> np.ndarray:
        """Per food slot (11, in layout order, zero-padded): x, y, stack layer / 9, held by
        Chad, held by Dave, is in the recipe; then stack height / 9 and the tool points."""
        values: list[float] = []
        stack = self.state.get("stack", [])
        for food in self.foods:
            layer = (stack.index(food) + 1) / 9.0 if food in stack else 0.0
            values += [*self.norm(self.world.position(food)), layer]
            values += [float(self.holder(food) == a) for a in self.possible_agents]
            values += [float(food in self.recipe)]
        values += [0.0] * 6 * (MAX_FOODS - len(self.foods))
        values += [len(stack) / 9.0]
        values += self.arm_features()
        return np.asarray(values, dtype=np.float32)

    # -- text ------------------------------------------------------------------------------

    def task_prompt(self) -> str:
        return "\n".join([
            "[Task] Make Sandwich. Two robots share a table with a cutting_board in the middle "
            f"at {fmt(BOARD)}. Chad (suction) stands at the right edge and can only PICK foods "
            "on the right side; Dave (gripper) stands at the left edge and can only PICK foods "
            "on the left side. Both can reach the cutting_board.",
            f"Recipe, bottom to top: {', '.join(self.recipe)}. Stack it on the cutting_board "
            "in this order: the first item on the cutting_board, every next item on top of "
            "the previous one.",
            "Rules: PICK needs an empty gripper and an item on your own side that is not "
            "stacked yet; you can only PUT what you hold; only one robot can PUT per round.",
            "Actions: PICK <food>; PUT <food> <food|cutting_board|table>; WAIT.",
            "Answer with one line per robot: NAME <robot> ACTION <action>.",
        ])

    def _food_line(self, food: str) -> str:
        stack = self.state["stack"]
        if food in stack:
            i = stack.index(food)
            where = "on cutting_board" if i == 0 else f"atop {stack[i - 1]}"
        elif self.holder(food):
            where = f"held by {self.holder(food)}"
        else:
            where = f"on the {self.side_of(food)} side"
        return f"{food}: {where} {fmt(self.world.position(food))}"

    def describe(self, agent: str | None = None) -> str:
        stack = self.state["stack"]
        board = f"cutting_board at {fmt(BOARD)}: " + (
            " < ".join(stack) + " (bottom to top)" if stack else "empty"
        )
        if agent is None:
            return "\n".join([self.robots_text(), board, *map(self._food_line, self.foods)])
        seen = [f for f in self.foods if f in stack or f in self.world.held(agent)
                or self.on_own_side(agent, f)]
        return "\n".join([
            f"You are {agent} ({self.arm(agent).spec.tool}); you see the {SIDE[agent]} side "
            "and the cutting_board.",
            self.robots_text().splitlines()[self.possible_agents.index(agent)],
            board,
            *map(self._food_line, seen),
        ])

    def decorations(self):
        x, y = BOARD
        w, h = BOARD_HALF
        return [("rect", (x - w, y - h, x + w, y + h), (170, 130, 90), "")]

    def colour(self, name: str) -> tuple[int, int, int]:
        return FOODS[kind_of(name)][1]

    def draw_order(self, name: str) -> int:
        stack = self.state.get("stack", [])
        return stack.index(name) + 1 if name in stack else 0

    # -- expert ----------------------------------------------------------------------------

    def expert_joint(self) -> dict[str, Action]:
        """Pipeline: whoever holds the next item PUTs it; the other PICKs ahead on its side."""
        joint = {a: self.wait_action(a) for a in self.possible_agents}
        stack = self.state["stack"]
        if len(stack) >= len(self.recipe):
            return joint
        upcoming = self.recipe[len(stack):]
        nxt = upcoming[0]
        target = stack[-1] if stack else "cutting_board"
        putter = self.holder(nxt)
        if putter:
            joint[putter] = self.parse(putter, f"PUT {nxt} {target}")
        for agent in self.possible_agents:
            if agent == putter or self.world.held(agent):
                continue
            food = next((f for f in upcoming if self.on_own_side(agent, f)), None)
            if food is not None:
                joint[agent] = self.parse(agent, f"PICK {food}")
        return joint
