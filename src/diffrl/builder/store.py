"""Writing levels as Minari datasets, listing them, and exporting one as a D4RL-format HDF5 file.

Ids: `diffrl/<env id in lower case>/<level>-v0`, e.g. `diffrl/hopper-v5/medium-replay-v0`
(Minari namespace `diffrl/hopper-v5`, name `medium-replay`, version 0). The env version is part
of the id because v4 and v5 data differ (docs/datasets.md). Besides Minari's own metadata
(env spec, ref_min_score, ref_max_score, num_episodes_average_score) every dataset carries a
`diffrl` block: level, build key, SAC budget, how the reference returns and the medium snapshot
were obtained.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from diffrl.builder.collect import Episode
from diffrl.builder.envs import BuildError, EnvInfo
from diffrl.data.minari import DATASETS_PATH_ENV

NAMESPACE = "diffrl"
META_KEY = "diffrl"
STAGING = ".diffrl-build/staging"  # hidden folders are invisible to Minari


def dataset_id(env_id: str, level: str, version: int = 0) -> str:
    return f"{NAMESPACE}/{env_id.lower()}/{level}-v{version}"


def default_root() -> Path:
    """Minari's local root: $MINARI_DATASETS_PATH, else ~/.minari/datasets."""
    env = os.environ.get(DATASETS_PATH_ENV)
    return Path(env).expanduser() if env else Path("~/.minari/datasets").expanduser()


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """`root` made absolute, or Minari's local root when None (Minari joins a relative root
    with itself when it measures the files)."""
    return (Path(root).expanduser() if root is not None else default_root()).absolute()


@contextlib.contextmanager
def minari_root(root: str | os.PathLike[str] | None) -> Iterator[Path]:
    """Point Minari at `root` (it reads $MINARI_DATASETS_PATH on every call) for a block."""
    path = resolve_root(root)
    old = os.environ.get(DATASETS_PATH_ENV)
    os.environ[DATASETS_PATH_ENV] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop(DATASETS_PATH_ENV, None)
        else:
            os.environ[DATASETS_PATH_ENV] = old


def dataset_dir(root: Path, ds_id: str) -> Path:
    return Path(root) / ds_id


def main_data_file(root: Path, ds_id: str) -> Path:
    """The HDF5 file that holds a dataset's transitions (what a build's SHA-256 names)."""
    return dataset_dir(root, ds_id) / "data" / "main_data.hdf5"


def read_metadata(root: Path, ds_id: str) -> dict[str, Any] | None:
    path = dataset_dir(root, ds_id) / "data" / "metadata.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_dataset(
    root: Path,
    ds_id: str,
    episodes: list[Episode],
    info: EnvInfo,
    refs: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Create the Minari dataset `ds_id` under `root` from episodes (must not exist yet)."""
    import gymnasium as gym
    import minari

    buffers = _buffers(episodes)
    env = gym.make(info.env_id, **info.env_kwargs)
    spec = env.spec
    env.close()
    # written in a staging root, then renamed into place: an interrupted write never leaves a
    # half-made dataset under the id (a rerun would take it for someone else's dataset)
    stage = Path(root) / STAGING
    shutil.rmtree(dataset_dir(stage, ds_id), ignore_errors=True)
    with minari_root(stage), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # author e-mail / code permalink not given
        dataset = minari.create_dataset_from_buffers(
            ds_id,
            buffers,
            env=spec,
            eval_env=spec,
            algorithm_name=f"diffrl.builder: {extra.get('policy', 'SAC')}",
            author="diffrl dataset builder",
            description=extra.get("description"),
            ref_min_score=refs["ref_min_score"],
            ref_max_score=refs["ref_max_score"],
            num_episodes_average_score=refs["ref_episodes"],
        )
        dataset.storage.update_metadata({META_KEY: extra})
    _ensure_namespace(root, ds_id)
    final = dataset_dir(root, ds_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(dataset_dir(stage, ds_id), final)


def _buffers(episodes: list[Episode]) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    return [
        EpisodeBuffer(
            id=i,
            observations=ep.observations,
            actions=ep.actions,
            rewards=ep.rewards,
            terminations=ep.terminations,
            truncations=ep.truncations,
            infos={},
        )
        for i, ep in enumerate(episodes)
    ]


def _ensure_namespace(root: Path, ds_id: str) -> None:
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = ds_id.rsplit("/", 1)[0]
    with minari_root(root):
        if namespace not in list_local_namespaces():
            create_namespace(namespace)


def delete_dataset(root: Path, ds_id: str) -> None:
    import minari

    with minari_root(root):
        minari.delete_dataset(ds_id)


# -- listing -------------------------------------------------------------------------------------
def _size_on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def list_datasets(root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every Minari dataset under `root` (default: Minari's local root), built here or not:
    id, level, env, transitions, episodes, reference returns and size on disk in bytes."""
    import minari

    rows = []
    with minari_root(root) as path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = minari.list_local_datasets()
        for ds_id, meta in sorted(found.items()):
            ours = read_metadata(path, ds_id) or {}
            spec = meta.get("env_spec")
            env = json.loads(spec).get("id") if isinstance(spec, str) else None
            rows.append(
                {
                    "id": ds_id,
                    "level": ours.get(META_KEY, {}).get("level"),
                    "env_id": env,
                    "transitions": meta.get("total_steps"),
                    "episodes": meta.get("total_episodes"),
                    "ref_min_score": meta.get("ref_min_score"),
                    "ref_max_score": meta.get("ref_max_score"),
                    "bytes": _size_on_disk(dataset_dir(path, ds_id)),
                }
            )
    return rows


# -- D4RL export ---------------------------------------------------------------------------------
def d4rl_rows(ds_id: str, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The dataset flattened into D4RL rows (float32 observations/actions/rewards, bool flags)
    plus the root attributes the D4RL loader reads (env, reference returns, action box)."""
    from diffrl.data.minari import load_minari

    with minari_root(root):
        ds = load_minari(ds_id)
    arrays = {
        "observations": ds.observations,
        "actions": ds.actions,
        "rewards": ds.rewards,
        "terminals": ds.terminals,
        "timeouts": ds.timeouts,
        "next_observations": ds.next_observations,
    }
    attrs = {
        "name": ds_id,
        "env_id": ds.env_id,
        "env_kwargs": json.dumps(ds.env_kwargs, sort_keys=True),
        "action_low": ds.action_low,
        "action_high": ds.action_high,
    }
    for key in ("ref_min_score", "ref_max_score"):
        if getattr(ds, key) is not None:
            attrs[key] = getattr(ds, key)
    return {"arrays": arrays, "attrs": attrs}


def export_hdf5(
    ds_id: str,
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write dataset `ds_id` as a D4RL-format HDF5 file that `diffrl.data.load_d4rl_hdf5` (and
    D4RL's own `get_dataset`) reads: observations, actions, rewards, terminals, timeouts,
    next_observations (gzip + shuffle), root attributes env_id, env_kwargs, ref_min_score,
    ref_max_score, action_low, action_high, name, and metadata/ with the build record."""
    path = Path(path)
    if not path.parent.is_dir():
        raise BuildError(f"{path}: expected an existing folder {path.parent}, found none.")
    if path.exists() and not overwrite:
        raise BuildError(f"{path}: expected a new file, found an existing one; pass --overwrite.")
    rows = d4rl_rows(ds_id, root)
    with minari_root(root) as r:
        build = (read_metadata(r, ds_id) or {}).get(META_KEY)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        for key, value in rows["arrays"].items():
            f.create_dataset(key, data=value, compression="gzip", shuffle=True)
        f.attrs.update({k: v for k, v in rows["attrs"].items() if v is not None})
        f.create_dataset("metadata/source", data=f"minari:{ds_id}")
        if build is not None:
            f.create_dataset("metadata/diffrl_build", data=json.dumps(build, sort_keys=True))
    os.replace(tmp, path)
    return path
