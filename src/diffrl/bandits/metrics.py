"""What "works" means on a bandit: support rate, mode shares, best-mode share, true reward.

All inputs and thresholds are in task coordinates; every value returned is a plain Python
float, list or None so the dict serialises to JSON as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffrl.bandits.tasks import BanditTask, assign_modes

_CHUNK = 256  # sampled actions per block of the nearest-data-point search


def nearest_data_distance(data: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Distance from each sample to its nearest data point, computed in blocks of samples."""
    data = np.asarray(data, np.float64).reshape(-1, 2)
    samples = np.asarray(samples, np.float64).reshape(-1, 2)
    data_sq = (data**2).sum(axis=1)
    out = np.empty(len(samples))
    for start in range(0, len(samples), _CHUNK):
        block = samples[start : start + _CHUNK]
        d2 = (block**2).sum(axis=1)[:, None] + data_sq[None, :] - 2.0 * block @ data.T
        out[start : start + _CHUNK] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def support_rate(task: BanditTask, data: np.ndarray, samples: np.ndarray) -> float:
    """Share of samples whose nearest data point is closer than the task's delta."""
    return float(np.mean(nearest_data_distance(data, samples) < task.delta))


def mode_shares(task: BanditTask, samples: np.ndarray) -> list[float] | None:
    """Share of samples per mode (nearest centre, within 4 std); None for tasks without modes."""
    if task.centres is None:
        return None
    idx, inside = assign_modes(samples, task.centres, task.mode_std)
    counts = np.bincount(idx[inside], minlength=task.n_modes)
    return [float(c) / len(idx) for c in counts]


def bandit_metrics(
    task: BanditTask, data_actions_task: np.ndarray, sampled_actions_task: np.ndarray
) -> dict[str, Any]:
    """support_rate, mode_shares, best_mode_share, mean_true_reward, best_reward, n_samples.

    `mean_true_reward` is the mean of `task.reward_fn` over the samples clipped to the box (the
    environment clips actions): for corners/cross the assigned mode's mean, and the lowest mode
    mean for samples outside every mode's 4-std disc; for the other tasks the reward function.
    """
    samples = np.asarray(sampled_actions_task, np.float64)
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"sampled actions must be a non-empty (n, 2) array, got {samples.shape}")
    shares = mode_shares(task, samples)
    best_share = None
    if shares is not None and task.best_modes:
        best_share = float(sum(shares[i] for i in task.best_modes))
    return {
        "support_rate": support_rate(task, data_actions_task, samples),
        "mode_shares": shares,
        "best_mode_share": best_share,
        "mean_true_reward": float(np.mean(task.reward_fn(task.clip(samples)))),
        "best_reward": float(task.best_reward),
        "n_samples": int(len(samples)),
    }
