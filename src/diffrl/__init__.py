"""diffrl: offline reinforcement learning with diffusion policies (Diffusion-QL, DTQL, DiffCPS).

Public API: `load_dataset`, `RunConfig`, `fit`, `load_policy`, `evaluate_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def fit(config: Any, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train a run described by a `RunConfig` (or a mapping of settings, presets applied as on
    the command line) into directory `out`; returns its summary."""
    from diffrl import launch, run

    cfg = config if isinstance(config, run.RunConfig) else run.resolve(config, "fit")
    return run.execute(launch.start(run.complete(cfg), Path(out)), progress=progress)


def __getattr__(name: str) -> Any:
    # heavy modules load on first use, so `import diffrl` (and so `diffrl --help`) stays fast;
    # even the dataset loaders wait, as they import numpy and h5py
    if name in ("OfflineDataset", "load_dataset"):
        from diffrl import data

        return getattr(data, name)
    if name == "RunConfig":
        from diffrl.run import RunConfig

        return RunConfig
    if name in ("load_policy", "evaluate_run"):
        from diffrl import policy

        return getattr(policy, name)
    raise AttributeError(name)


__all__ = ["OfflineDataset", "RunConfig", "evaluate_run", "fit", "load_dataset", "load_policy"]
