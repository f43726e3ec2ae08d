"""Minari datasets, flattened into transitions (exact: every episode stores its final observation).

Per episode: obs = observations[:-1], next_obs = observations[1:], terminals = terminations,
timeouts = truncations & ~terminations. Unlike D4RL files no row is dropped, since the next
observation of a truncated step is the true one. Dict observations are flattened by
concatenating their leaves in sorted key order.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from diffrl.data.dataset import DatasetError, OfflineDataset, dataset_error

DATASETS_PATH_ENV = "MINARI_DATASETS_PATH"


def _open(dataset_id: str) -> Any:
    try:
        import minari
    except ImportError as exc:
        raise DatasetError(
            f"minari:{dataset_id}: the 'minari' package is not installed (pip install minari)."
        ) from exc
    try:
        return minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError as exc:
        where = os.environ.get(DATASETS_PATH_ENV, "~/.minari/datasets (the default)")
        raise DatasetError(
            f"minari:{dataset_id}: not found locally under ${DATASETS_PATH_ENV} = {where}. "
            f"Download it where there is network access (minari download {dataset_id}) and "
            f"copy it there, or point ${DATASETS_PATH_ENV} at the folder that holds it."
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"minari:{dataset_id}: cannot be opened ({exc}).") from exc


def flatten_observation(obs: Any) -> np.ndarray:
    """(T, ...) array, or a nested dict/tuple of them, as a (T, D) float32 array.

    Dict leaves are concatenated in sorted key order, tuple leaves in their order.
    """
    if isinstance(obs, dict):
        obs = [obs[key] for key in sorted(obs)]
    if isinstance(obs, (list, tuple)):
        return np.concatenate([flatten_observation(leaf) for leaf in obs], axis=1)
    arr = np.asarray(obs, np.float32)
    return arr.reshape(len(arr), -1)


def _episode_rows(episode: Any, source: str) -> dict[str, np.ndarray]:
    obs = flatten_observation(episode.observations)
    steps = len(episode.rewards)
    if len(obs) != steps + 1:
        found = f"{len(obs)} observations for {steps} steps in episode {episode.id}"
        raise dataset_error(source, "observations", "T+1 observations for T steps", found)
    actions = np.asarray(episode.actions, np.float32)
    terminals = np.asarray(episode.terminations, bool)
    return {
        "observations": obs[:-1],
        "actions": actions.reshape(len(actions), -1),
        "rewards": np.asarray(episode.rewards, np.float32),
        "next_observations": obs[1:],
        "terminals": terminals,
        "timeouts": np.asarray(episode.truncations, bool) & ~terminals,
    }


def _action_bounds(space: Any, source: str) -> tuple[float, float]:
    low, high = np.asarray(getattr(space, "low", np.nan)), np.asarray(getattr(space, "high", 0))
    uniform = low.size > 0 and np.all(low == low.flat[0]) and np.all(high == high.flat[0])
    if not uniform or not np.all(np.isfinite(low)) or not np.all(np.isfinite(high)):
        found = f"{space}"
        raise dataset_error(source, "action_space", "a Box with one finite low/high", found)
    return float(low.flat[0]), float(high.flat[0])


def _episode_return(rows: dict[str, np.ndarray]) -> float | None:
    complete = len(rows["rewards"]) > 0 and (rows["terminals"][-1] or rows["timeouts"][-1])
    return float(np.sum(rows["rewards"], dtype=np.float64)) if complete else None


def load_minari(dataset_id: str) -> OfflineDataset:
    """Load a local Minari dataset (never downloads) as transitions with its env and refs."""
    dataset = _open(dataset_id)
    source = f"minari:{dataset_id}"
    episodes = _read_episodes(dataset, source)
    if not episodes:
        raise dataset_error(source, "episodes", "at least one episode", "none")
    arrays = {k: np.concatenate([ep[k] for ep in episodes]) for k in episodes[0]}
    returns = [r for r in map(_episode_return, episodes) if r is not None]
    low, high = _action_bounds(dataset.action_space, source)
    meta = dataset.storage.metadata
    spec = dataset.env_spec
    return OfflineDataset(
        **arrays,
        source=source,
        name=dataset_id,
        env_id=spec.id if spec is not None else None,
        env_kwargs=dict(spec.kwargs) if spec is not None else {},
        ref_min_score=_float(meta.get("ref_min_score")),
        ref_max_score=_float(meta.get("ref_max_score")),
        action_low=low,
        action_high=high,
        episode_returns=np.asarray(returns, np.float64),
    )


def _read_episodes(dataset: Any, source: str) -> list[dict[str, np.ndarray]]:
    try:
        return [_episode_rows(ep, source) for ep in dataset.iterate_episodes()]
    except (OSError, KeyError) as exc:  # h5py's errors for truncated or damaged files
        path = getattr(dataset.storage, "data_path", "its data file")
        raise DatasetError(
            f"{source}: {path} cannot be read; the file is damaged or truncated ({exc})."
        ) from None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
