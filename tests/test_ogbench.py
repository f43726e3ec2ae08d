"""OGBench single-task datasets: names, local lookup, OGBench's relabelling, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffrl.data import DatasetError, load_dataset
from diffrl.data.ogbench import parse_name

CUBE_QPOS = 14  # the cube's xyz sit at qpos[14:17] (7 numbers per cube after the arm's 14)


def write_cube_single(path: Path, cube_xyz: np.ndarray, trajectory: int) -> None:
    """A file in OGBench's layout: one row per step, terminals 1 on each trajectory's last row."""
    rows = len(cube_xyz)
    rng = np.random.default_rng(0)
    qpos = np.zeros((rows, 21), np.float32)
    qpos[:, CUBE_QPOS : CUBE_QPOS + 3] = cube_xyz
    terminals = np.zeros(rows, bool)
    terminals[trajectory - 1 :: trajectory] = True
    np.savez(
        path,
        observations=rng.normal(size=(rows, 28)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(rows, 5)).astype(np.float32),
        terminals=terminals,
        qpos=qpos,
        qvel=np.zeros((rows, 20), np.float32),
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OGBENCH_DATASET_DIR", str(tmp_path))
    return tmp_path


def test_names_map_to_the_env_and_the_file_as_ogbench_does() -> None:
    name = parse_name("cube-single-play-singletask-task2-v0")
    assert (name.env_id, name.file_name) == (
        "cube-single-singletask-task2-v0",
        "cube-single-play-v0.npz",
    )
    default = parse_name("puzzle-3x3-noisy-singletask-v0:val")
    assert (default.env_id, default.file_name) == (
        "puzzle-3x3-singletask-v0",
        "puzzle-3x3-noisy-v0-val.npz",
    )


def test_a_goal_conditioned_name_is_refused_with_the_single_task_name() -> None:
    with pytest.raises(DatasetError, match="use cube-single-play-singletask-v0"):
        parse_name("cube-single-play-v0")
    with pytest.raises(DatasetError, match="split 'test'"):
        parse_name("cube-single-play-singletask-v0:test")


def test_a_missing_file_says_where_it_looked_and_how_to_make_it(data_dir: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_dataset("ogbench:cube-single-play-singletask-v0")
    message = str(err.value)
    assert str(data_dir / "cube-single-play-v0.npz") in message
    assert "diffrl data build --ogbench cube-single-play" in message
    assert "nothing is downloaded" in message


def test_rewards_and_masks_follow_the_task_target(data_dir: Path) -> None:
    # task2's target is (0.5, 0, 0.02), task1's (0.425, -0.1, 0.02); success within 0.04
    target2 = np.array([0.5, 0.0, 0.02])
    offsets = np.array([[0.03, 0, 0], [0.05, 0, 0], [0, 0.0, 0.039], [0.3, 0.3, 0]] * 3)
    write_cube_single(data_dir / "cube-single-play-v0.npz", target2 + offsets, trajectory=6)
    ds = load_dataset("ogbench:cube-single-play-singletask-task2-v0")
    # 12 rows, two trajectories of 6: the last row of each has no successor and is dropped
    assert ds.size == 10
    kept = np.r_[0:5, 6:11]
    success = np.linalg.norm(offsets[kept], axis=1) <= 0.04
    np.testing.assert_array_equal(ds.rewards, np.where(success, 0.0, -1.0))
    np.testing.assert_array_equal(ds.terminals, success)  # mask 0: no bootstrap
    np.testing.assert_array_equal(ds.timeouts, np.isin(np.arange(10), [4, 9]) & ~success)
    assert ds.env_id == "ogbench:cube-single-singletask-task2-v0"
    task1 = load_dataset("ogbench:cube-single-play-singletask-task1-v0")
    assert (task1.rewards == -1.0).all()  # none of these rows is near task1's target
    np.testing.assert_array_equal(ds.episode_returns, [ds.rewards[:5].sum(), ds.rewards[5:].sum()])


def test_the_validation_split_is_its_own_file(data_dir: Path) -> None:
    target = np.array([0.5, 0.0, 0.02])
    write_cube_single(data_dir / "cube-single-play-v0.npz", np.tile(target + 1, (8, 1)), 4)
    write_cube_single(data_dir / "cube-single-play-v0-val.npz", np.tile(target, (4, 1)), 4)
    val = load_dataset("ogbench:cube-single-play-singletask-v0:val")
    assert val.size == 3 and val.terminals.all() and val.name.endswith(":val")
    assert load_dataset("ogbench:cube-single-play-singletask-v0").size == 6


def test_a_file_without_qpos_is_refused_naming_the_field(data_dir: Path) -> None:
    path = data_dir / "cube-single-play-v0.npz"
    np.savez(path, observations=np.zeros((4, 28), np.float32), actions=np.zeros((4, 5)),
             terminals=np.array([0, 0, 0, 1], bool))  # fmt: skip
    with pytest.raises(DatasetError, match=r"cube-single-play-v0.npz: field 'qpos'"):
        load_dataset("ogbench:cube-single-play-singletask-v0")
    write_cube_single(path, np.zeros((4, 3)), trajectory=5)  # no row marks an end
    with pytest.raises(DatasetError, match=r"field 'terminals'.*last row of each trajectory"):
        load_dataset("ogbench:cube-single-play-singletask-v0")
