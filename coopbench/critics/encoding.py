"""How a critic sees actions: each agent's vocabulary entries as verb/object tokens.

An action text such as `MOVE green_cube_1` becomes the verb token `move` and the object tokens
`green`, `cube`, `1`; the network embeds the verb and averages the object embeddings, so
objects that share words (all `cube`s, all `panel`s) share statistics. The table is built from
the env's fixed vocabularies and stored in the checkpoint: a checkpoint whose vocabulary
differs from the env's is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from coopbench.envs.base import LanguageEnv

_SPLIT = re.compile(r"[\s_]+")


def tokens_of(text: str) -> list[str]:
    return [t for t in _SPLIT.split(text.strip().lower()) if t]


@dataclass
class ActionTable:
    """Agents in their fixed (prefix) order, their vocabularies, and the token table."""

    agents: list[str]
    vocab: dict[str, list[str]]

    @classmethod
    def from_env(cls, env: LanguageEnv) -> ActionTable:
        return cls(
            list(env.possible_agents), {a: list(env.vocabulary(a)) for a in env.possible_agents}
        )

    def digest(self) -> str:
        blob = json.dumps({"agents": self.agents, "vocab": self.vocab}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def token_list(self) -> list[str]:
        seen: dict[str, None] = {}
        for agent in self.agents:
            for text in self.vocab[agent]:
                for tok in tokens_of(text):
                    seen.setdefault(tok, None)
        return ["<pad>", *seen]

    def token_table(self) -> np.ndarray:
        """int64 [n_agents, max_vocab, max_tokens]: token ids per (agent, action), 0 = pad."""
        ids = {t: i for i, t in enumerate(self.token_list())}
        width = max(len(tokens_of(t)) for a in self.agents for t in self.vocab[a])
        depth = max(len(self.vocab[a]) for a in self.agents)
        table = np.zeros((len(self.agents), depth, max(width, 1)), dtype=np.int64)
        for i, agent in enumerate(self.agents):
            for j, text in enumerate(self.vocab[agent]):
                toks = [ids[t] for t in tokens_of(text)]
                table[i, j, : len(toks)] = toks
        return table

    def texts(self) -> list[list[str]]:
        return [self.vocab[a] for a in self.agents]

    def to_json(self) -> dict:
        return {"agents": self.agents, "vocab": self.vocab}

    @classmethod
    def from_json(cls, data: dict) -> ActionTable:
        return cls(list(data["agents"]), {k: list(v) for k, v in data["vocab"].items()})
