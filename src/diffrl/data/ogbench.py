"""OGBench single-task datasets (`ogbench:NAME`, `ogbench:NAME:val`), read from local files only.

A name is `<env>-<type>-singletask[-taskN]-v0`, e.g. `cube-single-play-singletask-task2-v0`
(no `-taskN`: OGBench's default task). Its file drops the task words
(`cube-single-play-v0.npz`, validation split `cube-single-play-v0-val.npz`) and is looked up in
$OGBENCH_DATASET_DIR, else OGBench's own default `~/.ogbench/data`. Nothing is downloaded: a
missing file is an error saying where it was looked for and how to make it.

Rows are turned into transitions by OGBench's own `load_dataset` (the last row of each
trajectory has no successor and is dropped) and rewards come from its own `relabel_dataset`
for the task (r(s_t) = successes − subtasks, mask 0 when the task is solved), so they are
exactly OGBench's. In diffrl's terms: `terminals` = mask 0 (no bootstrap; the recorded
trajectory goes on), `timeouts` = the end of a recorded trajectory that is not a success.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from diffrl.data.dataset import (
    DatasetError,
    OfflineDataset,
    dataset_error,
    episode_returns_from_flags,
)

DATASET_DIR_ENV = "OGBENCH_DATASET_DIR"
DEFAULT_DATASET_DIR = "~/.ogbench/data"
_NAME = re.compile(r"^(?P<env>.+)-(?P<type>[a-z]+)-singletask(?:-(?P<task>task[1-5]))?-v0$")


@dataclasses.dataclass(frozen=True)
class OGBenchName:
    """What one `ogbench:` spec names: the dataset, its environment and its file."""

    dataset: str  # e.g. cube-single-play-singletask-task2-v0
    env_id: str  # the single-task gymnasium id, e.g. cube-single-singletask-task2-v0
    file_stem: str  # e.g. cube-single-play-v0
    split: str  # "train" or "val"

    @property
    def file_name(self) -> str:
        return self.file_stem + ("-val" if self.split == "val" else "") + ".npz"


def parse_name(spec: str) -> OGBenchName:
    """`NAME` or `NAME:val` (the part after `ogbench:`) as an `OGBenchName`; bad names raise."""
    name, _, split = spec.partition(":")
    if split not in ("", "train", "val"):
        raise DatasetError(
            f"ogbench:{spec}: split '{split}' is not known; expected 'ogbench:NAME' "
            f"(training split) or 'ogbench:NAME:val' (validation split)."
        )
    match = _NAME.match(name)
    if match is None:
        raise DatasetError(f"ogbench:{spec}: not a single-task dataset name; {_name_hint(name)}")
    task = f"-{match['task']}" if match["task"] else ""
    return OGBenchName(
        dataset=name,
        env_id=f"{match['env']}-singletask{task}-v0",
        file_stem=f"{match['env']}-{match['type']}-v0",
        split=split or "train",
    )


def _name_hint(name: str) -> str:
    form = "expected '<env>-<type>-singletask[-taskN]-v0', e.g. cube-single-play-singletask-v0"
    stem = name.removesuffix("-v0")
    if stem != name and "singletask" not in name:  # a goal-conditioned name: it has no reward
        return f"{form}; goal-conditioned data has no reward, use {stem}-singletask-v0."
    return form + "."


def dataset_dir() -> Path:
    """Where `ogbench:` files are looked up: $OGBENCH_DATASET_DIR, else ~/.ogbench/data."""
    return Path(os.environ.get(DATASET_DIR_ENV) or DEFAULT_DATASET_DIR).expanduser()


def load_ogbench(spec: str) -> OfflineDataset:
    """The transitions of `ogbench:{spec}` with OGBench's single-task rewards and masks."""
    name = parse_name(spec)
    path = dataset_dir() / name.file_name
    if not path.is_file():
        raise DatasetError(
            f"ogbench:{spec}: {path} not found (looked in ${DATASET_DIR_ENV}, else "
            f"{DEFAULT_DATASET_DIR}); nothing is downloaded. Make it with `diffrl data build "
            f"--ogbench {name.file_stem.removesuffix('-v0')}` or copy OGBench's file there."
        )
    made_by = check_file(path, name)
    ogbench = _import_ogbench(spec)
    env = ogbench.make_env_and_datasets(name.dataset, env_only=True)
    try:
        rows = ogbench.utils.load_dataset(str(path), add_info=True)
        ogbench.relabel_utils.relabel_dataset(name.env_id, env, rows)
    finally:
        env.close()
    from importlib.metadata import version

    provenance = {"ogbench_relabelled_by": version("ogbench"), "made_by": made_by or "unknown"}
    return _as_offline_dataset(rows, name, path).replace(provenance=provenance)


def _import_ogbench(spec: str) -> Any:
    try:
        import ogbench
        import ogbench.relabel_utils
        import ogbench.utils
    except ImportError as exc:
        raise DatasetError(
            f"ogbench:{spec}: the 'ogbench' package is not installed (pip install ogbench)."
        ) from exc
    return ogbench


def check_file(path: Path, name: OGBenchName) -> dict | None:
    """Refuse a file OGBench's reader would misread: keys, row counts, trajectory ends. Returns
    the `diffrl_build` record of a file diffrl made (recipe, seed, OGBench version), else None."""
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as file:
            shapes = {key: file[key].shape for key in file.files}
            ends = np.asarray(file["terminals"]) if "terminals" in file.files else None
            made = str(file["diffrl_build"]) if "diffrl_build" in file.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc}).") from exc
    needed = ["observations", "actions", "terminals", "qpos"]
    if name.env_id.startswith(("scene", "puzzle")):
        needed.append("button_states")
    for key in needed:
        if key not in shapes:
            found = "no such key (keys: " + ", ".join(sorted(shapes)) + ")"
            raise dataset_error(source, key, f"an array (OGBench's {name.env_id} data)", found)
    rows = shapes["observations"][0]
    for key in needed[1:]:
        if shapes[key][0] != rows:
            raise dataset_error(source, key, f"{rows} rows (as 'observations')", f"{shapes[key]}")
    if rows < 2 or not ends[-1]:  # OGBench's reader relies on each trajectory's last-row mark
        expected = "1 on the last row of each trajectory"
        raise dataset_error(source, "terminals", expected, _ends(ends))
    return json.loads(made) if made else None


def _ends(ends: np.ndarray) -> str:
    last = ends[-1] if len(ends) else "-"
    return f"{int(np.sum(ends))} ones in {len(ends)} rows, last row {last}"


def _as_offline_dataset(rows: dict[str, np.ndarray], name: OGBenchName, path: Path) -> Any:
    terminals = rows["masks"] == 0.0
    trajectory_end = rows["terminals"] == 1.0
    rewards = rows["rewards"].astype(np.float32)
    return OfflineDataset(
        observations=rows["observations"].astype(np.float32),
        actions=rows["actions"].astype(np.float32),
        rewards=rewards,
        next_observations=rows["next_observations"].astype(np.float32),
        terminals=terminals,
        timeouts=trajectory_end & ~terminals,
        source=str(path),
        name=name.dataset + (":val" if name.split == "val" else ""),
        env_id=f"ogbench:{name.env_id}",  # gymnasium imports ogbench, which registers the id
        # episodes are the recorded ones: a success (mask 0) does not end one
        episode_returns=episode_returns_from_flags(rewards, trajectory_end, trajectory_end),
    )
