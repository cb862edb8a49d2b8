"""A trained critic at planning time: checkpoint loading, validation against the env, scoring.

A checkpoint records the env id, the env's features version, the agent order and action
vocabularies; `Critic.load(path, env)` refuses one that does not match (a clear
`CoopbenchError`, never a silently wrong score).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from coopbench.core.errors import CoopbenchError
from coopbench.core.saved import load_torch, validated
from coopbench.core.types import Action
from coopbench.critics.encoding import ActionTable
from coopbench.critics.model import QNet

FORMAT = "coopbench-critic/2"  # bump when the network layout changes


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Hparams(_Loose):
    encoder: str
    hidden: int
    layers: int
    emb: int


class _Table(_Loose):
    agents: list[str]
    vocab: dict[str, list[str]]


class _Meta(_Loose):
    env_id: str
    features_version: str | int
    feature_dim: int
    gamma: float
    table: _Table
    hparams: _Hparams


class _Checkpoint(_Loose):
    """What `load` reads of a checkpoint, checked before anything indexes into it."""

    format: str
    meta: _Meta
    state_dict: dict[str, Any]
    members: list[dict[str, Any]] = []


def pick_device(device: str) -> torch.device:
    """`auto` = CUDA when present, else CPU; asking for CUDA without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CoopbenchError(f"--device {device}: no CUDA device here (use auto or cpu)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise CoopbenchError(f"--device {device!r}: use auto, cpu or cuda[:N]")
    return torch.device(device)


def build_net(meta: dict[str, Any]) -> QNet:
    table = ActionTable.from_json(meta["table"])
    text = None
    if meta["hparams"]["encoder"] == "text":
        from coopbench.critics.text_encoder import embed_table

        text = torch.as_tensor(embed_table(table))
    return QNet(
        int(meta["feature_dim"]),
        torch.as_tensor(table.token_table()),
        len(table.token_list()),
        hidden=int(meta["hparams"]["hidden"]),
        layers=int(meta["hparams"]["layers"]),
        emb=int(meta["hparams"]["emb"]),
        text_table=text,
    )


def _state(net: QNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in net.state_dict().items() if k != "text_table"}


def save_checkpoint(path: Path | str, nets: QNet | Sequence[QNet], meta: dict[str, Any]) -> Path:
    """One network (`state_dict`) or an ensemble (the first in `state_dict`, the rest in
    `members`; a reader that knows only `state_dict` still gets a working critic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    nets = [nets] if isinstance(nets, QNet) else list(nets)
    blob: dict[str, Any] = {"format": FORMAT, "meta": meta, "state_dict": _state(nets[0])}
    if len(nets) > 1:
        blob["members"] = [_state(n) for n in nets[1:]]
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


class Critic:
    """Q(s, a^{1:k}) for prefixes in the checkpoint's agent order (missing agents masked).

    An ensemble checkpoint scores with the mean of its members' outputs (independently
    initialised networks on the same data: the mean has less variance than any one of them).
    """

    def __init__(
        self, net: QNet | Sequence[QNet], meta: dict[str, Any], device: torch.device
    ) -> None:
        self.nets = [n.to(device).eval() for n in ([net] if isinstance(net, QNet) else net)]
        self.meta = meta
        self.device = device
        self.table = ActionTable.from_json(meta["table"])
        self.gamma = float(meta["gamma"])

    @property
    def return_scale(self) -> float:
        """Standard deviation of the training returns (the unit of scale-free thresholds)."""
        return float(self.nets[0].ret_std)  # members share the normalisation

    @property
    def agents(self) -> list[str]:
        return self.table.agents

    @classmethod
    def load(cls, path: Path | str, env: Any = None, device: str = "cpu") -> Critic:
        path = Path(path)
        if not path.exists():
            raise CoopbenchError(
                f"no critic checkpoint at {path} (train one: coopbench critic train)"
            )
        blob = load_torch(path, "critic checkpoint")
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            found = blob.get("format") if isinstance(blob, dict) else None
            raise CoopbenchError(f"{path} is not a {FORMAT} checkpoint (found {found!r}); "
                                 "retrain it with `coopbench critic train`")
        validated(_Checkpoint, blob, path, "critic checkpoint")
        meta = blob["meta"]
        nets = []
        for state in [blob["state_dict"], *blob.get("members", [])]:
            try:
                net = build_net(meta)
                net.load_state_dict(state, strict=False)
            except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                lines = str(exc).strip().splitlines()  # torch's last line names the tensor
                detail = lines[-1].strip() if lines else type(exc).__name__
                raise CoopbenchError(
                    f"critic checkpoint {path} does not match its own metadata: {detail}"
                ) from None
            nets.append(net)
        critic = cls(nets, meta, pick_device(device))
        if env is not None:
            critic.check_env(env, path)
        return critic

    def check_env(self, env: Any, path: Path | str = "checkpoint") -> None:
        env_id = getattr(getattr(env, "spec", None), "id", None)
        problems = []
        if env_id is not None and env_id != self.meta["env_id"]:
            problems.append(f"it was trained on {self.meta['env_id']}, not {env_id}")
        if str(env.features_version) != str(self.meta["features_version"]):
            problems.append(
                f"features version {self.meta['features_version']} != the env's "
                f"{env.features_version}"
            )
        if ActionTable.from_env(env).to_json() != self.meta["table"]:
            problems.append("its agents or action vocabulary differ from the env's")
        if len(np.asarray(env.features())) != int(self.meta["feature_dim"]):
            problems.append("its feature size differs from the env's")
        if problems:
            raise CoopbenchError(f"critic {path} does not fit this env: {'; '.join(problems)}")

    def _row(self, partial: Mapping[str, Action | int]) -> list[int]:
        row = []
        for agent in self.agents:
            act = partial.get(agent)
            row.append(-1 if act is None else int(act.index if isinstance(act, Action) else act))
        return row

    @torch.no_grad()
    def q_many(
        self, features: np.ndarray, partials: Sequence[Mapping[str, Action | int]]
    ) -> np.ndarray:
        feats = torch.as_tensor(np.asarray(features, dtype=np.float32), device=self.device)
        feats = feats.unsqueeze(0).expand(len(partials), -1)
        acts = torch.as_tensor(
            [self._row(p) for p in partials], dtype=torch.long, device=self.device
        )
        return torch.stack([n.q(feats, acts) for n in self.nets]).mean(0).cpu().numpy()

    def q(self, features: np.ndarray, partial: Mapping[str, Action | int]) -> float:
        return float(self.q_many(features, [partial])[0])

    def value(self, features: np.ndarray) -> float:
        """V(s): the all-masked output."""
        return self.q(features, {})
