"""Diagnostic, not part of the suite: PPO shaped by the TRUE team progress as the potential.

It separates "the LLM-fitted potential is wrong" from "potential-based shaping by this
progress measure does not teach PPO the task in this budget". The shaping is scale·(Φ(s′) −
Φ(s)) with Φ = `team_progress` (the simulated judge's ground truth, without the distance
term), none on the step that ends an episode. The run's train.json says reward "sparse":
this script replaces the trainer's shaping hook.

    python results/credit/oracle_ppo.py OUT_DIR SCALE STEPS SEED
"""
import sys

import numpy as np
import torch

from coopbench.credit.ppo import TrainConfig, Trainer
from coopbench.credit.progress_overcooked import team_progress


class OracleTrainer(Trainer):
    """The trainer with its potential replaced by the true team progress."""

    scale = 1.0

    def _progress(self) -> np.ndarray:
        return np.array([[team_progress(e)] * self.vec.n_agents for e in self.vec.envs])

    def _phi(self, obs):
        return self._progress()

    def _shape(self, reward, out, phi):
        new = self._progress()
        term = self.scale * (new - phi)
        term[out.terminated | out.truncated] = 0.0
        return reward + term, new, float(term.sum())


def main(out: str, scale: str, steps: str, seed: str) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig("overcooked/cramped_room-v0", reward="sparse", total_steps=int(steps),
                      num_envs=8, num_steps=256, lr=5e-4, update_epochs=4, ent_coef=0.03,
                      seed=int(seed))
    trainer = OracleTrainer(cfg, out, log=print)
    trainer.scale = float(scale)

    def show(row: dict) -> None:
        if row["update"] % 10 == 0:
            print(row["env_steps"], row.get("soups"), round(row["steps_per_s"]))

    trainer.train(on_update=show)


if __name__ == "__main__":
    main(*sys.argv[1:5])
