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


class QStack(nn.Module):
    """E QNets of one layout as one network: stacked weights, one batched matmul per layer.

    Why: an ensemble trained member by member pays every kernel launch and Python step E
    times; stacked, the E members are one forward, one backward and one Adam step (on CUDA
    that is what decides the speed). Each member still sees only its own rows and its own
    gradient (the loss is a sum of per-member losses), so training the stack is training the
    members side by side. The action encoding is looked up per vocabulary entry once per
    step and gathered per row (the same numbers as `QNet.encode`, computed V times instead of
    B times); every gather is an `index_select`, so the step can be captured as a CUDA graph.
    `member_state` gives each member back as a QNet state dict for checkpoints and scoring.
    """

    def __init__(self, members: list[QNet]) -> None:
        super().__init__()
        first = members[0]
        self.n_agents = first.n_agents
        self.n_vocab = int(first.token_table.shape[1])
        for name in ("token_table", "feat_mean", "feat_std", "ret_mean", "ret_std"):
            self.register_buffer(name, getattr(first, name).detach().clone())
        self.text = first.text_table is not None
        if self.text:
            self.register_buffer("text_table", first.text_table.detach().clone())
        else:
            self.verb = self._stack([m.verb.weight for m in members])
            self.obj = self._stack([m.obj.weight for m in members])
            self.ident = self._stack([m.ident.weight for m in members])
        linears = [layer for layer in first.mlp if isinstance(layer, nn.Linear)]
        self.weights = nn.ParameterList(
            self._stack([m.mlp[2 * i].weight.t() for m in members]) for i in range(len(linears)))
        self.biases = nn.ParameterList(
            self._stack([m.mlp[2 * i].bias.unsqueeze(0) for m in members])
            for i in range(len(linears)))

    @staticmethod
    def _stack(tensors: list[torch.Tensor]) -> nn.Parameter:
        return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())

    @property
    def size(self) -> int:
        return int(self.weights[0].shape[0])

    def slot_table(self) -> torch.Tensor:
        """[E, n_agents * (V + 1), slot + 1]: each (agent, action)'s encoding; row V of each
        agent is the masked slot (zeros, presence flag 0)."""
        size, n, vocab = self.size, self.n_agents, self.n_vocab
        if self.text:
            slot = self.text_table.unsqueeze(0).expand(size, -1, -1, -1)
        else:
            toks = self.token_table  # [n, V, L]
            verb = _take(self.verb, toks[..., 0])  # [E, n, V, emb]
            objs = toks[..., 1:]
            if objs.shape[-1]:
                mask = (objs > 0).float().unsqueeze(-1)
                obj = (_take(self.obj, objs) * mask).sum(-2) / mask.sum(-2).clamp(min=1.0)
            else:
                obj = torch.zeros_like(verb)
            ident = self.ident.view(size, n, vocab, -1)
            slot = torch.cat([verb, obj, ident], -1)
        present = torch.ones(*slot.shape[:-1], 1, dtype=slot.dtype, device=slot.device)
        rows = torch.cat([slot, present], -1)  # [E, n, V, S]
        masked = torch.zeros(size, n, 1, rows.shape[-1], dtype=rows.dtype, device=rows.device)
        return torch.cat([rows, masked], 2).reshape(size, n * (vocab + 1), -1)

    def table_index(self, actions: torch.Tensor) -> torch.Tensor:
        """[..., n_agents] vocabulary indices (-1 = masked) -> rows of `slot_table`."""
        vocab = self.n_vocab
        local = torch.where(actions >= 0, actions, torch.full_like(actions, vocab))
        offset = torch.arange(self.n_agents, device=actions.device) * (vocab + 1)
        return local + offset

    def forward(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """x [E, B, F] normalised features, rows [E, B, n] from `table_index` -> [E, B].

        x may also be [B, F] (the same rows for every member: validation)."""
        size = self.size
        table = self.slot_table()
        flat = table.reshape(-1, table.shape[-1])
        if rows.dim() == 2:
            rows = rows.unsqueeze(0).expand(size, -1, -1)
        base = torch.arange(size, device=rows.device).view(size, 1, 1) * table.shape[1]
        enc = flat.index_select(0, (rows + base).flatten()).view(size, rows.shape[1], -1)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(size, -1, -1)
        h = torch.cat([x, enc], -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def keep(self, positions: list[int]) -> None:
        """Keep only the members at `positions` (new Parameter objects: rebuild the optimiser)."""
        index = torch.tensor(positions, device=self.weights[0].device)

        def cut(p: torch.Tensor) -> nn.Parameter:
            return nn.Parameter(p.detach().index_select(0, index).contiguous())

        if not self.text:
            self.verb, self.obj, self.ident = cut(self.verb), cut(self.obj), cut(self.ident)
        for i in range(len(self.weights)):
            self.weights[i] = cut(self.weights[i])
            self.biases[i] = cut(self.biases[i])

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i as a `QNet` state dict (what checkpoints hold)."""
        state = {name: getattr(self, name) for name in
                 ("token_table", "feat_mean", "feat_std", "ret_mean", "ret_std")}
        if not self.text:
            state.update({"verb.weight": self.verb[i], "obj.weight": self.obj[i],
                          "ident.weight": self.ident[i]})
        for j, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            state[f"mlp.{2 * j}.weight"] = w[i].t()
            state[f"mlp.{2 * j}.bias"] = b[i, 0]
        return {k: v.detach().clone().contiguous() for k, v in state.items()}


def _take(weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """weight [E, T, d] at token ids `index` (any shape) -> [E, *index.shape, d].

    `index_select`, not advanced indexing: its backward is an `index_add` with no host sync,
    which a CUDA graph can capture."""
    out = weight.index_select(1, index.flatten())
    return out.view(weight.shape[0], *index.shape, weight.shape[-1])
