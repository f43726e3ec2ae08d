"""Build D4RL-style offline datasets (random, medium, medium-replay, expert, medium-expert) for
continuous-action Gymnasium environments, stored as Minari datasets (docs/datasets.md).

    from diffrl.builder import build_datasets, list_datasets, export_hdf5
    build_datasets("Hopper-v5", out="datasets")       # SAC behaviour agent + five levels
    diffrl.load_dataset("minari:diffrl/hopper-v5/medium-v0")   # with MINARI_DATASETS_PATH set
"""

from __future__ import annotations

from diffrl.builder.envs import BuildError
from diffrl.builder.recipe import LEVELS, BuildResult, build_datasets
from diffrl.builder.store import dataset_id, export_hdf5, list_datasets

__all__ = [
    "LEVELS",
    "BuildError",
    "BuildResult",
    "build_datasets",
    "dataset_id",
    "export_hdf5",
    "list_datasets",
]
