"""Offline datasets: loaders (D4RL HDF5, Minari, OGBench, npz), reference returns, reward
transforms."""

from __future__ import annotations

from pathlib import Path

from diffrl.data.arrays import load_npz, save_npz
from diffrl.data.d4rl import load_d4rl_hdf5, name_for_d4rl_file, resolve_d4rl_name
from diffrl.data.dataset import DatasetError, OfflineDataset
from diffrl.data.scores import known_d4rl_names
from diffrl.data.transforms import (
    REWARD_TRANSFORMS,
    apply_reward_transform,
    check_reward_transform,
)

__all__ = [
    "REWARD_TRANSFORMS",
    "DatasetError",
    "OfflineDataset",
    "apply_reward_transform",
    "list_known_d4rl_names",
    "load_d4rl_hdf5",
    "load_dataset",
    "load_npz",
    "save_npz",
]

SPEC_FORMS = (
    "'d4rl:NAME' (e.g. d4rl:hopper-medium-v2, file looked up in $D4RL_DATASET_DIR), "
    "'minari:ID' (a local Minari dataset), 'ogbench:NAME[:val]' (an OGBench single-task "
    "dataset, e.g. ogbench:cube-single-play-singletask-v0, file in $OGBENCH_DATASET_DIR), "
    "or a path to a .hdf5/.h5 (D4RL layout) "
    "or .npz file"
)


def list_known_d4rl_names() -> list[str]:
    """Every D4RL dataset name with known reference returns, sorted."""
    return known_d4rl_names()


def _load_untransformed(spec: str) -> OfflineDataset:
    if spec.startswith("d4rl:"):
        name = spec.removeprefix("d4rl:")
        return load_d4rl_hdf5(resolve_d4rl_name(name), name=name)
    if spec.startswith("minari:"):
        from diffrl.data.minari import load_minari  # imports minari only when asked

        return load_minari(spec.removeprefix("minari:"))
    if spec.startswith("ogbench:"):
        from diffrl.data.ogbench import load_ogbench  # imports ogbench only when asked

        return load_ogbench(spec.removeprefix("ogbench:"))
    if Path(spec).is_dir():
        raise DatasetError(
            f"{spec}: is a directory; expected a .hdf5/.h5/.npz file ({SPEC_FORMS})."
        )
    suffix = Path(spec).suffix.lower()
    if suffix in (".hdf5", ".h5"):
        return load_d4rl_hdf5(spec, name=name_for_d4rl_file(spec))
    if suffix == ".npz":
        return load_npz(spec)
    raise DatasetError(f"dataset spec '{spec}' is not understood; use {SPEC_FORMS}.")


def load_dataset(spec: str, reward_transform: str = "no") -> OfflineDataset:
    """Load a dataset from a spec (see `SPEC_FORMS`) and apply a reward transform to it."""
    check_reward_transform(reward_transform)  # fail before a long load
    dataset = _load_untransformed(spec)
    return apply_reward_transform(dataset, reward_transform)
