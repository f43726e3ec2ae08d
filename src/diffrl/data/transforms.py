"""Reward transforms of Diffusion-QL / DTQL / DiffCPS (`reward_tune`), applied once per dataset."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from diffrl.data.dataset import (
    DatasetError,
    OfflineDataset,
    dataset_error,
    episode_returns_from_flags,
)

RewardFn = Callable[[OfflineDataset], np.ndarray]


def _normalize(ds: OfflineDataset) -> np.ndarray:
    r = ds.rewards.astype(np.float64)
    std = r.std(ddof=1) if len(r) > 1 else 0.0
    if not std > 0:
        raise dataset_error(ds.source, "rewards", "a non-zero std for 'normalize'", f"{std}")
    return (r - r.mean()) / std


def _iql_locomotion(ds: OfflineDataset) -> np.ndarray:
    none = np.zeros(ds.size, bool)
    returns = episode_returns_from_flags(ds.rewards, ds.terminals, none)
    span = float(returns.max() - returns.min()) if len(returns) else 0.0
    if not span > 0:
        found = f"{len(returns)} terminal-split episodes, return range {span}"
        raise dataset_error(ds.source, "terminals", "episodes of different returns", found)
    return ds.rewards.astype(np.float64) * 1000.0 / span


REWARD_TRANSFORMS: dict[str, RewardFn] = {
    "no": lambda ds: ds.rewards,
    "cql_antmaze": lambda ds: 4.0 * (ds.rewards.astype(np.float64) - 0.5),
    "iql_antmaze": lambda ds: ds.rewards.astype(np.float64) - 1.0,
    "normalize": _normalize,
    "antmaze": lambda ds: 2.0 * (ds.rewards.astype(np.float64) - 0.25),
    "iql_locomotion": _iql_locomotion,
}
"""name -> new rewards. `normalize`: (r − mean)/std, unbiased std over the dataset;
`iql_locomotion`: r·1000/(max − min episode return), episodes split on terminals only."""


def check_reward_transform(name: str) -> None:
    """Raise `DatasetError` listing the valid names unless `name` is a reward transform."""
    if name not in REWARD_TRANSFORMS:
        valid = ", ".join(REWARD_TRANSFORMS)
        raise DatasetError(f"unknown reward transform '{name}'; valid names: {valid}.")


def apply_reward_transform(dataset: OfflineDataset, name: str) -> OfflineDataset:
    """A copy of `dataset` with transformed rewards and `reward_transform` set to `name`.

    "no" is always allowed and changes nothing; any other transform of a dataset whose rewards
    are already transformed is refused (transforms do not compose).
    """
    check_reward_transform(name)
    if name == "no":
        return dataset
    if dataset.reward_transform != "no":
        raise DatasetError(
            f"{dataset.source}: rewards already transformed by '{dataset.reward_transform}'; "
            f"refusing to apply '{name}' on top of it."
        )
    rewards = np.asarray(REWARD_TRANSFORMS[name](dataset), np.float32)
    return dataset.replace(rewards=rewards, reward_transform=name)
