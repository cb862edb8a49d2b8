"""The prefix-masked Q network: MLP over env features plus per-agent action encodings.

Input per row: the env's `features()` (normalised with training statistics) and one slot per
agent in the fixed agent order. A slot holds the agent's action encoding and a presence flag;
agents outside the prefix are masked (zeros, flag 0). With every agent masked the output is
the state value V(s), which ReAd-J's default baseline uses (Q(s, all-WAIT)/γ = V(s)).
Encoders: `structured` (learned verb/object token embeddings plus a per-action identity
embedding, the default) or `text` (frozen
sentence embeddings of the action texts, precomputed once per vocabulary entry).
"""

from __future__ import annotations

import torch
from torch import nn


class QNet(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        token_table: torch.Tensor,
        n_tokens: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        emb: int = 16,
        text_table: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.n_agents = int(token_table.shape[0])
        self.register_buffer("token_table", token_table.long())
        self.register_buffer("feat_mean", torch.zeros(feature_dim))
        self.register_buffer("feat_std", torch.ones(feature_dim))
        self.register_buffer("ret_mean", torch.zeros(()))
        self.register_buffer("ret_std", torch.ones(()))
        if text_table is not None:
            self.register_buffer("text_table", text_table.float())
            slot = int(text_table.shape[-1])
        else:
            self.text_table = None
            self.verb = nn.Embedding(n_tokens, emb)
            self.obj = nn.Embedding(n_tokens, emb, padding_idx=0)
            # plus one vector per (agent, action): identity that shared tokens blur
            self.ident = nn.Embedding(self.n_agents * int(token_table.shape[1]), emb)
            slot = 3 * emb
        width = feature_dim + self.n_agents * (slot + 1)
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*blocks)

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """[B, n_agents] vocabulary indices (-1 = masked) -> [B, n_agents * (slot + 1)]."""
        present = (actions >= 0).float().unsqueeze(-1)
        idx = actions.clamp(min=0)
        agent = torch.arange(self.n_agents, device=actions.device).expand_as(idx)
        if self.text_table is not None:
            slot = self.text_table[agent, idx]
        else:
            toks = self.token_table[agent, idx]  # [B, n, L]
            verb = self.verb(toks[..., 0])
            objs = toks[..., 1:]
            if objs.shape[-1]:
                mask = (objs > 0).float().unsqueeze(-1)
                obj = (self.obj(objs) * mask).sum(-2) / mask.sum(-2).clamp(min=1.0)
            else:
                obj = torch.zeros_like(verb)
            ident = self.ident(agent * self.token_table.shape[1] + idx)
            slot = torch.cat([verb, obj, ident], -1)
        slot = slot * present
        return torch.cat([slot, present], -1).flatten(1)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Normalised prediction (train in this space); `q` gives returns."""
        x = (features - self.feat_mean) / self.feat_std
        return self.mlp(torch.cat([x, self.encode(actions)], -1)).squeeze(-1)

    def q(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.forward(features, actions) * self.ret_std + self.ret_mean
