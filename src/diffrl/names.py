"""Directory names for dataset specs, shared by `diffrl train` and `diffrl bench` (no heavy
imports, so the CLI can use it before it knows which command runs)."""

from __future__ import annotations

from pathlib import Path

# The model-selection rules a run's summary.json reports (diffrl.selection), in table order.
SELECTION_RULES = ("final", "best", "offline_selected", "early_stopped")


def dataset_slug(spec: str) -> str:
    """A directory name for a dataset spec: `minari:diffrl/hopper-v5/medium-v0` ->
    `diffrl_hopper-v5_medium-v0`, `d4rl:hopper-medium-v2` -> `hopper-medium-v2`,
    `path/to/x.hdf5` -> `x`."""
    name = spec.split(":", 1)[-1]
    if name.endswith((".hdf5", ".h5", ".npz")):
        name = Path(name).stem
    return name.strip("/").replace("/", "_")
