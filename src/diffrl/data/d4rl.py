"""D4RL-layout data: the HDF5 reader, D4RL's `qlearning_dataset` (vectorised) and file lookup.

D4RL is used as a *format*, not a dependency: a file holds row-aligned `observations`,
`actions`, `rewards`, `terminals` and (v1/v2) `timeouts`; a transition (s_i, a_i, r_i, s_{i+1})
is formed from consecutive rows. The same semantics serve `.npz` files (see `arrays.py`).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from diffrl.data import scores
from diffrl.data.dataset import (
    DatasetError,
    OfflineDataset,
    dataset_error,
    episode_returns_from_flags,
)

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
MATRIX_KEYS = ("observations", "actions", "next_observations")
VECTOR_KEYS = ("rewards", "terminals", "timeouts")
FLAG_KEYS = ("terminals", "timeouts")
DATASET_DIR_ENV = "D4RL_DATASET_DIR"


# -- D4RL file names --------------------------------------------------------------------------
_ANTMAZE_SHAPES = {  # maze -> (file tag v0/v2, file tag v1, multistart, multigoal)
    "umaze": ("u-maze", "umaze", False, False),
    "umaze-diverse": ("u-maze", "umaze", True, True),
    "medium-play": ("big-maze", "medium", True, False),
    "medium-diverse": ("big-maze", "medium", True, True),
    "large-play": ("hardest-maze", "large", True, False),
    "large-diverse": ("hardest-maze", "large", True, True),
}
_KITCHEN_FILES = {
    "complete": "mini_kitchen_microwave_kettle_light_slider-v0.hdf5",
    "partial": "kitchen_microwave_kettle_light_slider-v0.hdf5",
    "mixed": "kitchen_microwave_kettle_bottomburner_light-v0.hdf5",
}
_ADROIT_V0_FILES = {
    "human": "{task}-v0_demos_clipped.hdf5",
    "cloned": "{task}-demos-v0-bc-combined.hdf5",
    "expert": "{task}-v0_expert_clipped.hdf5",
}


def _split_version(name: str) -> tuple[str, str]:
    stem, _, version = name.rpartition("-")
    return stem, version


def _locomotion_file(agent: str, dset: str, version: str) -> str | None:
    if version != "v0":
        return f"{agent}_{dset.replace('-', '_')}-{version}.hdf5"
    if dset == "full-replay":
        return None  # no v0 file exists
    if dset == "medium-replay":
        return f"{'walker' if agent == 'walker2d' else agent}_mixed.hdf5"
    return f"{agent}_{dset.replace('-', '_')}.hdf5"


def _antmaze_file(maze: str, version: str) -> str:
    tag02, tag1, start, goal = _ANTMAZE_SHAPES[maze]
    tag = tag1 if version == "v1" else tag02
    suffix = "_fixed" if version == "v2" else ""
    return f"Ant_maze_{tag}_noisy_multistart_{start}_multigoal_{goal}_sparse{suffix}.hdf5"


def d4rl_file_name(name: str) -> str | None:
    """Basename of D4RL's download URL for a known dataset name (the name D4RL stores it under)."""
    if name not in scores.REF_SCORES:
        return None
    stem, version = _split_version(name)
    head, _, dset = stem.partition("-")
    if head in scores.LOCOMOTION_AGENTS:
        return _locomotion_file(head, dset, version)
    if head == "antmaze":
        return _antmaze_file(dset, version)
    if head in scores.ADROIT_TASKS:
        if version == "v1":
            return f"{name}.hdf5"
        return _ADROIT_V0_FILES[dset].format(task=head)
    if head == "kitchen":
        return _KITCHEN_FILES[dset]
    if head == "maze2d":
        size, _, dense = dset.partition("-")
        return f"maze2d-{size}-{dense or 'sparse'}-{version}.hdf5"
    return None


def _candidate_files(name: str) -> list[str]:
    primary = d4rl_file_name(name)
    fallback = f"{name}.hdf5"
    if primary is None or primary == fallback:
        return [fallback]
    return [primary, fallback]


def _file_name_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name in scores.known_d4rl_names():
        for file in _candidate_files(name):
            index.setdefault(file, name)
    return index


def name_for_d4rl_file(path: str | os.PathLike[str]) -> str | None:
    """The D4RL dataset name whose file name (D4RL's, or `<name>.hdf5`) matches `path`."""
    return _file_name_index().get(Path(path).name)


def d4rl_search_dirs() -> list[Path]:
    """Where D4RL files are looked for: `$D4RL_DATASET_DIR`, then `~/.d4rl/datasets`."""
    dirs = []
    if os.environ.get(DATASET_DIR_ENV):
        dirs.append(Path(os.environ[DATASET_DIR_ENV]).expanduser())
    dirs.append(Path("~/.d4rl/datasets").expanduser())
    return dirs


def resolve_d4rl_name(name: str) -> Path:
    """The local file of a D4RL dataset name; raises `DatasetError` listing the paths tried."""
    if name not in scores.REF_SCORES:
        close = difflib.get_close_matches(name, scores.known_d4rl_names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise dataset_error(
            f"d4rl:{name}", "name", "a known D4RL dataset name", f"'{name}'." + hint
        )
    tried = [d / f for d in d4rl_search_dirs() for f in _candidate_files(name)]
    for path in tried:
        if path.is_file():
            return path
    raise DatasetError(
        f"d4rl:{name}: file not found; tried {', '.join(str(p) for p in tried)}. "
        f"Download {d4rl_file_name(name)} from D4RL's dataset server on a machine with "
        f"network access and put it in a folder named by ${DATASET_DIR_ENV} (or in "
        f"~/.d4rl/datasets), or load any D4RL-layout file by its path."
    )


# -- reading and checking -----------------------------------------------------------------------
def plain_value(value: Any) -> Any:
    """An HDF5 attribute or 0-d array as a plain Python value."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_hdf5(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every h5py.Dataset of a file (by its path inside the file) and the root attributes."""
    if not Path(path).is_file():
        raise DatasetError(f"{path}: file not found.")
    arrays: dict[str, np.ndarray] = {}

    def visit(key: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            arrays[key] = item[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
            attrs = {k: plain_value(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc}).") from exc
    return arrays, attrs


def check_arrays(
    data: Mapping[str, Any], source: str, required: tuple[str, ...] = REQUIRED_KEYS
) -> dict[str, np.ndarray]:
    """Validated row-aligned arrays: required keys, (N,1) vectors squeezed, float32/bool, finite.

    Only the keys `qlearning_dataset` uses are returned; others (infos/, metadata/) are dropped.
    """
    for key in required:
        if key not in data:
            found = "no such key (keys: " + ", ".join(sorted(data)) + ")"
            raise dataset_error(source, key, "a dataset with this name", found)
    keys = [k for k in MATRIX_KEYS + VECTOR_KEYS if k in data]
    out = {k: _check_one(k, np.asarray(data[k]), source) for k in keys}
    n = len(out["observations"])
    for key, arr in out.items():
        if len(arr) != n:
            raise dataset_error(source, key, f"{n} rows (as 'observations')", f"{len(arr)} rows")
    if "next_observations" in out and out["next_observations"].shape != out["observations"].shape:
        found = str(out["next_observations"].shape)
        raise dataset_error(source, "next_observations", "the shape of 'observations'", found)
    return out


def _check_one(key: str, arr: np.ndarray, source: str) -> np.ndarray:
    if key in VECTOR_KEYS and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    want = 2 if key in MATRIX_KEYS else 1
    if len(arr) == 0:
        raise dataset_error(source, key, "at least one row", "0 rows (an empty dataset)")
    real = np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)
    if arr.ndim != want or not (real or arr.dtype == np.bool_):
        shape = "(N, dim)" if want == 2 else "(N,) or (N, 1)"
        found = f"shape {arr.shape}, dtype {arr.dtype}"
        raise dataset_error(source, key, f"a real numeric array of shape {shape}", found)
    if key in FLAG_KEYS:
        return _flags(key, arr, source)
    return _float32(key, arr, source)


def _flags(key: str, arr: np.ndarray, source: str) -> np.ndarray:
    """0/1 (or bool) flags as bool; any other value is refused, not rounded."""
    bad = np.flatnonzero((arr != 0) & (arr != 1))
    if bad.size:
        found = f"{arr[bad[0]]!r} at row {int(bad[0])}"
        raise dataset_error(source, key, "flags of 0 or 1 (or booleans)", found)
    return arr.astype(bool)


def _float32(key: str, arr: np.ndarray, source: str) -> np.ndarray:
    """As float32, refusing NaN and inf, and saying so when a finite value overflows float32."""
    rows = lambda mask: mask.reshape(len(arr), -1).all(axis=1)  # noqa: E731
    finite = rows(np.isfinite(arr))
    if not finite.all():
        found = f"NaN or inf at row {int(np.flatnonzero(~finite)[0])}"
        raise dataset_error(source, key, "finite values", found)
    out = arr.astype(np.float32)
    fits = rows(np.isfinite(out))
    if not fits.all():
        row = int(np.flatnonzero(~fits)[0])
        found = f"{np.abs(arr[row]).max():g} at row {row}, beyond float32's 3.4e38"
        raise dataset_error(source, key, "values that fit in float32", found)
    return out


# -- qlearning_dataset --------------------------------------------------------------------------
def counter_timeouts(
    terminals: np.ndarray, max_episode_steps: int, terminate_on_end: bool = False
) -> np.ndarray:
    """The rows D4RL's step-counter fallback marks as final when a file has no `timeouts`.

    Reproduces D4RL exactly, quirk included: the counter is reset *before* its increment, so
    after a terminal row the next row counts as step 1 (after a skipped final row, as step 0).
    """
    terminals = np.asarray(terminals, bool)
    n, flags = len(terminals), np.zeros(len(terminals), bool)
    term_rows = np.flatnonzero(terminals)
    row, step = 0, 0
    while row < n and step <= max_episode_steps - 1:
        final_row = row + max_episode_steps - 1 - step
        k = np.searchsorted(term_rows, row)
        if k < len(term_rows) and term_rows[k] < final_row:
            row, step = int(term_rows[k]) + 1, 1
            continue
        if final_row >= n:
            break
        flags[final_row] = True
        row, step = final_row + 1, int(terminate_on_end)
    return flags


def _raw_timeouts(
    data: Mapping[str, np.ndarray], max_episode_steps: int | None, terminate_on_end: bool
) -> np.ndarray:
    if "timeouts" in data:
        return np.asarray(data["timeouts"], bool)
    if max_episode_steps:
        return counter_timeouts(data["terminals"], max_episode_steps, terminate_on_end)
    return np.zeros(len(data["terminals"]), bool)


def qlearning_dataset(
    data: Mapping[str, np.ndarray],
    terminate_on_end: bool = False,
    max_episode_steps: int | None = None,
) -> dict[str, np.ndarray]:
    """D4RL's `qlearning_dataset`, vectorised: transitions from consecutive rows.

    Row i gives (obs[i], act[i], rew[i], obs[i+1], terminals[i]); the last row is dropped and,
    unless `terminate_on_end`, so are timeout rows (their obs[i+1] is the next reset state).
    Without a `timeouts` key the rows are D4RL's step counter (`max_episode_steps`) or none.
    With a `next_observations` key those are used and the last row is kept (if not a timeout).
    Returns observations, actions, next_observations, rewards, terminals and timeouts (the
    timeout flag of each kept row: all False unless `terminate_on_end`).
    """
    obs = np.asarray(data["observations"], np.float32)
    timeouts = _raw_timeouts(data, max_episode_steps, terminate_on_end)
    if "next_observations" in data:
        rows = np.arange(len(obs))
        next_obs = np.asarray(data["next_observations"], np.float32)
    else:
        rows = np.arange(len(obs) - 1)
        next_obs = obs[1:]
    keep = rows if terminate_on_end else rows[~timeouts[rows]]
    return {
        "observations": obs[keep],
        "actions": np.asarray(data["actions"], np.float32)[keep],
        "next_observations": next_obs[keep],
        "rewards": np.asarray(data["rewards"], np.float32)[keep],
        "terminals": np.asarray(data["terminals"], bool)[keep],
        "timeouts": timeouts[keep],
    }


# -- building the dataset -------------------------------------------------------------------------
def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _env_from_meta(
    meta: Mapping[str, Any], name: str | None, source: str
) -> tuple[str | None, dict[str, Any]]:
    if not meta.get("env_id"):
        env = scores.eval_env_for(name) if name else None
        return (env[0], env[1]) if env else (None, {})
    kwargs = meta.get("env_kwargs") or {}
    try:
        return str(meta["env_id"]), json.loads(kwargs) if isinstance(kwargs, str) else dict(kwargs)
    except (ValueError, TypeError) as exc:
        raise dataset_error(source, "env_kwargs", "a JSON object", f"{kwargs!r} ({exc})") from exc


def provenance(meta: Mapping[str, Any], name: str | None, source: str) -> dict[str, Any]:
    """name, env and reference returns: the name tables, overridden by the file's own metadata."""
    refs = (scores.reference_returns(name) if name else None) or (None, None)
    env_id, env_kwargs = _env_from_meta(meta, name, source)
    out: dict[str, Any] = {
        "name": name,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "ref_min_score": _float_or_none(meta.get("ref_min_score", refs[0])),
        "ref_max_score": _float_or_none(meta.get("ref_max_score", refs[1])),
    }
    for key in ("action_low", "action_high"):
        if meta.get(key) is not None:
            out[key] = float(meta[key])
    return out


def dataset_from_d4rl_arrays(
    data: Mapping[str, Any],
    source: str,
    meta: Mapping[str, Any] | None = None,
    name: str | None = None,
    terminate_on_end: bool = False,
) -> OfflineDataset:
    """An `OfflineDataset` from raw D4RL-layout rows (HDF5 or npz), with D4RL's semantics.

    `meta` (root attributes / scalar entries) may set name, env_id, env_kwargs, ref_min_score,
    ref_max_score, action_low, action_high and max_episode_steps; it overrides the name tables.
    """
    meta = dict(meta or {})
    arrays = check_arrays(data, source)
    name = str(meta["name"]) if meta.get("name") else name
    steps = meta.get("max_episode_steps") or (scores.max_episode_steps(name) if name else None)
    steps = int(steps) if steps else None
    q = qlearning_dataset(arrays, terminate_on_end, steps)
    raw_timeouts = _raw_timeouts(arrays, steps, terminate_on_end)
    returns = episode_returns_from_flags(arrays["rewards"], arrays["terminals"], raw_timeouts)
    return OfflineDataset(
        **q, source=source, episode_returns=returns, **provenance(meta, name, source)
    )


def load_d4rl_hdf5(
    path: str | os.PathLike[str], name: str | None = None, terminate_on_end: bool = False
) -> OfflineDataset:
    """Load a D4RL-layout HDF5 file as `qlearning_dataset` transitions.

    `name` (a D4RL dataset name) selects the reference returns, eval env and, for files
    without `timeouts`, the episode limit; root attributes of the file override all three.
    """
    arrays, attrs = read_hdf5(path)
    return dataset_from_d4rl_arrays(arrays, str(path), attrs, name, terminate_on_end)
