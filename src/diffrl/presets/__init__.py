"""Per-task hyperparameters from the papers' official code, as data (one table per algorithm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffrl.presets import diffcps, dql, dtql, fql, iql, td3bc

TABLES: dict[str, dict[str, dict[str, Any]]] = {
    "dql": dql.PRESETS,
    "diffcps": diffcps.PRESETS,
    "dtql": dtql.PRESETS,
    "td3bc": td3bc.PRESETS,
    "iql": iql.PRESETS,
    "fql": fql.PRESETS,
}


def get_preset(algo: str, name: str) -> dict[str, Any]:
    """The preset `name` of `algo` as a dict of Config and run fields."""
    table = TABLES.get(algo)
    if table is None:
        raise KeyError(
            f"no presets for algorithm {algo!r}; algorithms with presets: {sorted(TABLES)}"
        )
    if name not in table:
        raise KeyError(f"unknown {algo} preset {name!r}; known presets: {', '.join(sorted(table))}")
    return dict(table[name])


def preset_names(algo: str) -> list[str]:
    return sorted(TABLES.get(algo, {}))


def preset_name_for_dataset(spec: str) -> str | None:
    """The preset name a dataset spec implies: `d4rl:NAME` and `ogbench:NAME[:val]` -> NAME, a
    file whose stem is a known D4RL name (e.g. `data/hopper-medium-v2.hdf5`) -> that stem,
    anything else -> None."""
    if spec.startswith(("d4rl:", "ogbench:")):
        return spec.split(":")[1]
    # imported here: the dataset package loads numpy and h5py, which `import diffrl.presets`
    # should not pay for
    from diffrl.data.scores import known_d4rl_names

    stem = Path(spec).stem
    return stem if stem in known_d4rl_names() else None
