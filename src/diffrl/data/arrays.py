"""`.npz` datasets: D4RL-layout rows (same semantics as the HDF5 files) and our own save format.

An `.npz` holds the D4RL keys (observations, actions, rewards, terminals, optional timeouts and
next_observations) plus optional 0-d entries action_low, action_high, env_id, env_kwargs (JSON),
name, ref_min_score, ref_max_score, max_episode_steps. It is read with D4RL's
`qlearning_dataset` rules. A file written by `save_npz` carries `diffrl_format` and holds
finished transitions, which load back unchanged.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from diffrl.data.d4rl import REQUIRED_KEYS, check_arrays, dataset_from_d4rl_arrays, plain_value
from diffrl.data.dataset import DatasetError, OfflineDataset

FORMAT_KEY = "diffrl_format"
FORMAT = "transitions-v1"
TRANSITION_KEYS = (
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminals",
    "timeouts",
)
_SCALAR_FIELDS = (
    "name",
    "env_id",
    "ref_min_score",
    "ref_max_score",
    "action_low",
    "action_high",
    "reward_transform",
)


def _read_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if Path(path).is_dir():
        raise DatasetError(f"{path}: is a directory; expected a .npz file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: file not found.") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc}).") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: not a .npz archive (it holds a single array).")
    with loaded:
        items = {key: _entry(loaded, key, path) for key in loaded.files}
    arrays = {k: v for k, v in items.items() if v.ndim > 0}
    meta = {k: plain_value(v) for k, v in items.items() if v.ndim == 0}
    return arrays, meta


def _entry(loaded: Any, key: str, path: str | os.PathLike[str]) -> np.ndarray:
    try:
        return loaded[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays: never unpickled from a data file
            raise DatasetError(
                f"{path}: field {key!r} holds Python objects (dtype object); expected numeric "
                "arrays (save them with an explicit dtype, e.g. float32)."
            ) from None
        raise DatasetError(f"{path}: field {key!r} is unreadable ({exc}).") from None


def _from_transitions(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], source: str
) -> OfflineDataset:
    """A `save_npz` file: the stored transitions and facts, taken exactly as written."""
    checked = check_arrays(arrays, source, REQUIRED_KEYS + ("next_observations", "timeouts"))
    fields = {k: meta[k] for k in _SCALAR_FIELDS if k in meta}
    returns = arrays.get("episode_returns")
    return OfflineDataset(
        **checked,
        source=source,
        env_kwargs=json.loads(meta.get("env_kwargs", "{}")),
        episode_returns=None if returns is None else np.asarray(returns, np.float64),
        **fields,
    )


def load_npz(path: str | os.PathLike[str], name: str | None = None) -> OfflineDataset:
    """Load an `.npz` dataset (D4RL-layout rows, or a file written by `save_npz`)."""
    arrays, meta = _read_npz(path)
    source = str(path)
    kind = meta.get(FORMAT_KEY)
    if kind is None:
        return dataset_from_d4rl_arrays(arrays, source, meta, name)
    if kind != FORMAT:
        raise DatasetError(
            f"{source}: field '{FORMAT_KEY}' is not usable: expected '{FORMAT}', found '{kind}'."
        )
    return _from_transitions(arrays, meta, source)


def save_npz(
    dataset: OfflineDataset, path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Write `dataset` so that `load_npz` gives it back identically (arrays, facts, returns)."""
    path = Path(path)
    entries: dict[str, Any] = {k: getattr(dataset, k) for k in TRANSITION_KEYS}
    entries[FORMAT_KEY] = np.array(FORMAT)
    for key in _SCALAR_FIELDS:
        if getattr(dataset, key) is not None:
            entries[key] = np.array(getattr(dataset, key))
    try:
        entries["env_kwargs"] = np.array(json.dumps(dataset.env_kwargs, sort_keys=True))
    except TypeError as exc:
        raise DatasetError(f"{path}: env_kwargs cannot be stored as JSON ({exc}).") from exc
    if dataset.episode_returns is not None:
        entries["episode_returns"] = np.asarray(dataset.episode_returns)
    try:
        with open(path, "wb" if overwrite else "xb") as f:
            np.savez_compressed(f, **entries)
    except FileExistsError as exc:
        raise DatasetError(f"{path}: already exists; pass overwrite=True to replace it.") from exc
    return path
