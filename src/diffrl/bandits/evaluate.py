"""Evaluating a policy on a 2-D bandit: sample actions at the constant state, score them."""

from __future__ import annotations

from typing import Any

import numpy as np

from diffrl.bandits.metrics import bandit_metrics
from diffrl.bandits.tasks import make_task, to_task_coords
from diffrl.data import OfflineDataset

N_SAMPLES = 1000  # the spec measures every metric on 1,000 sampled actions


class BanditEvaluator:
    """`score` is the mean true reward of the sampled actions; all metrics of BANDITS.md ride
    along. The policy's plain samples are scored unless the agent's act options say otherwise."""

    def __init__(self, task_name: str, data: OfflineDataset, n_samples: int = N_SAMPLES) -> None:
        self.task = make_task(task_name)
        self.data_task = to_task_coords(self.task, data.actions)
        self.obs = np.zeros((n_samples, data.obs_dim), np.float32)
        self.last_samples: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {"bandit": self.task.name, "samples": len(self.obs)}

    def __call__(self, act_fn) -> dict[str, Any]:
        actions = to_task_coords(self.task, np.asarray(act_fn(self.obs, 0)))
        self.last_samples = actions
        metrics = bandit_metrics(self.task, self.data_task, actions)
        return {"score": metrics["mean_true_reward"], **metrics}
