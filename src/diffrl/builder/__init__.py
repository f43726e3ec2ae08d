"""Build D4RL-style offline datasets (random, medium, medium-replay, expert, medium-expert) for
continuous-action Gymnasium environments, stored as Minari datasets (docs/datasets.md).

    from diffrl.builder import build_datasets, list_datasets, export_hdf5
    build_datasets("Hopper-v5", out="datasets")       # SAC behaviour agent + five levels
    diffrl.load_dataset("minari:diffrl/hopper-v5/medium-v0")   # with MINARI_DATASETS_PATH set
"""

from __future__ import annotations

import importlib
from typing import Any

from diffrl.builder.defaults import LEVELS

# name -> submodule; loaded on first use so that building the `diffrl` parser (which imports
# diffrl.builder.cli) imports neither numpy and h5py (envs, store) nor JAX (recipe)
_LAZY = {
    "BuildError": "envs",
    "BuildResult": "recipe",
    "build_datasets": "recipe",
    "dataset_id": "store",
    "export_hdf5": "store",
    "list_datasets": "store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"diffrl.builder.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'diffrl.builder' has no attribute {name!r}")


__all__ = [
    "LEVELS",
    "BuildError",
    "BuildResult",
    "build_datasets",
    "dataset_id",
    "export_hdf5",
    "list_datasets",
]
