"""`diffrl data build --ogbench`: OGBench's file format, its recipe, exact resume, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffrl.builder import ogbench_gen
from diffrl.builder.envs import BuildError
from diffrl.builder.ogbench_gen import build_ogbench, episode_seed, maze_cells
from diffrl.cli import main
from diffrl.data import load_dataset


def _raise_after(calls: int, real):
    """`real`, until it has been called `calls` times: then a Ctrl-C."""
    done = []

    def wrapped(*a, **k):
        if len(done) == calls:
            raise KeyboardInterrupt
        done.append(1)
        return real(*a, **k)

    return wrapped


def test_pointmaze_files_are_read_by_ogbench_itself(tmp_path: Path, capsys, monkeypatch) -> None:
    import ogbench

    argv = ["data", "build", "--ogbench", "pointmaze-medium-navigate", "--episodes", "2"]
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == 0
    assert "2002 rows, written" in capsys.readouterr().out
    train = tmp_path / "pointmaze-medium-navigate-v0.npz"
    with np.load(train) as file:
        ends = np.flatnonzero(file["terminals"])
        assert file["observations"].shape == (2002, 2) and file["qpos"].shape == (2002, 2)
        assert np.abs(file["actions"]).max() <= 1.0
    np.testing.assert_array_equal(ends, [1000, 2001])  # 1 001 steps per episode
    name = "pointmaze-medium-navigate-singletask-v0"
    _, rows, val = ogbench.make_env_and_datasets(name, dataset_path=str(train))
    assert len(rows["observations"]) == 2000 and len(val["observations"]) == 1000
    monkeypatch.setenv("OGBENCH_DATASET_DIR", str(tmp_path))
    ours = load_dataset(f"ogbench:{name}")
    np.testing.assert_array_equal(ours.rewards, rows["rewards"])
    np.testing.assert_array_equal(ours.terminals, rows["masks"] == 0)


def test_rows_hold_the_state_before_each_step(tmp_path: Path) -> None:
    build_ogbench("cube-single-play", tmp_path, episodes=1, episode_steps=40, progress=False)
    with np.load(tmp_path / "cube-single-play-v0.npz") as file:
        qpos, obs = file["qpos"], file["observations"]
    env = ogbench_gen.make_collection_env(ogbench_gen.recipe_for("cube-single-play"))
    first_ob, _ = env.reset(seed=episode_seed(0, 0))
    # row 0 is the reset state: OGBench's relabelling reads r(s_t) from these rows
    np.testing.assert_allclose(qpos[0], env.unwrapped._data.qpos, rtol=0, atol=1e-6)
    np.testing.assert_allclose(obs[0], first_ob, rtol=0, atol=1e-6)
    assert len(qpos) == 40 and not np.allclose(qpos[0], qpos[-1])  # the arm moved


def test_a_stopped_build_resumes_to_the_same_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(ogbench_gen, "CHUNK_EPISODES", 1)
    args = {"episodes": 3, "episode_steps": 60, "progress": False}
    build_ogbench("pointmaze-large-navigate", tmp_path / "whole", **args)
    real = ogbench_gen.collect_episode
    monkeypatch.setattr(ogbench_gen, "collect_episode", _raise_after(2, real))
    with pytest.raises(KeyboardInterrupt):
        build_ogbench("pointmaze-large-navigate", tmp_path / "cut", **args)
    assert not (tmp_path / "cut" / "pointmaze-large-navigate-v0.npz").exists()
    assert len(list((tmp_path / "cut" / ".diffrl-build").rglob("chunk-*.npz"))) == 2
    monkeypatch.setattr(ogbench_gen, "collect_episode", real)
    build_ogbench("pointmaze-large-navigate", tmp_path / "cut", **args)
    # a finished build leaves only its two files: no chunks, recipe or lock beside them
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == [
        "pointmaze-large-navigate-v0-val.npz",
        "pointmaze-large-navigate-v0.npz",
    ]
    for split in ("v0.npz", "v0-val.npz"):
        with np.load(tmp_path / "whole" / f"pointmaze-large-navigate-{split}") as a:
            with np.load(tmp_path / "cut" / f"pointmaze-large-navigate-{split}") as b:
                assert a.files == b.files
                assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_a_different_build_is_refused_not_mixed_in(tmp_path: Path, monkeypatch) -> None:
    build_ogbench(
        "pointmaze-medium-navigate", tmp_path, episodes=1, episode_steps=20, progress=False
    )
    with pytest.raises(BuildError, match="pass --overwrite"):
        build_ogbench(
            "pointmaze-medium-navigate", tmp_path, episodes=2, episode_steps=20, progress=False
        )
    (tmp_path / "pointmaze-medium-navigate-v0-val.npz").unlink()
    with pytest.raises(BuildError, match="its other split does not"):
        build_ogbench(
            "pointmaze-medium-navigate", tmp_path, episodes=1, episode_steps=20, progress=False
        )
    # an unfinished build's work folder is never mixed with chunks of other settings
    monkeypatch.setattr(ogbench_gen, "CHUNK_EPISODES", 1)
    real = ogbench_gen.collect_episode
    monkeypatch.setattr(ogbench_gen, "collect_episode", _raise_after(1, real))
    args = {"episode_steps": 20, "overwrite": True, "progress": False}
    with pytest.raises(KeyboardInterrupt):
        build_ogbench("pointmaze-medium-navigate", tmp_path, episodes=2, **args)
    monkeypatch.setattr(ogbench_gen, "collect_episode", real)
    with pytest.raises(BuildError, match="holds a build of"):
        build_ogbench("pointmaze-medium-navigate", tmp_path, episodes=3, **args)
    with pytest.raises(BuildError, match="ant/humanoid mazes"):
        build_ogbench("antmaze-large-navigate", tmp_path)


def test_the_recipes_carry_ogbench_counts_and_noise() -> None:
    recipes = ogbench_gen.RECIPES
    assert (
        recipes["cube-triple-play"].episodes == 3000
        and recipes["puzzle-4x6-noisy"].episodes == 5000
    )
    assert recipes["puzzle-3x3-noisy"].p_random_action == 0.2
    assert (
        recipes["scene-noisy"].p_random_action == 0.1 and recipes["scene-play"].p_random_action == 0
    )
    giant = recipes["pointmaze-giant-navigate"]
    assert (giant.episodes, giant.episode_steps, giant.val_episodes) == (500, 2001, 50)


def test_goal_cells_are_the_maze_cells_off_straight_corridors() -> None:
    maze = np.array([
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 1, 1, 1],
        [1, 0, 1, 1, 1],
        [1, 1, 1, 1, 1],
    ])  # fmt: skip
    free, goals = maze_cells(maze)
    assert free == [(1, 1), (1, 2), (1, 3), (2, 1), (3, 1)]
    assert goals == [(1, 1), (1, 3), (3, 1)]  # the corner and both dead ends


def test_a_scene_episode_whose_cube_leaves_the_view_is_unhealthy() -> None:
    qpos = np.zeros((3, 20))
    qpos[:, 14:17] = [0.4, 0.0, 0.02]
    assert ogbench_gen._scene_is_healthy(qpos)
    qpos[1, 14:17] = [0.4, -0.31, 0.07]  # far left, inside the drawer: fine
    assert ogbench_gen._scene_is_healthy(qpos)
    qpos[1, 14:17] = [0.4, -0.31, 0.02]  # far left on the table
    assert not ogbench_gen._scene_is_healthy(qpos)
    qpos[1, 14:17] = [0.4, 0.29, 0.02]  # too far right
    assert not ogbench_gen._scene_is_healthy(qpos)


def test_a_second_process_building_the_same_dataset_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    work = tmp_path / ".diffrl-build" / "ogbench-pointmaze-medium-navigate-seed0"
    work.mkdir(parents=True)
    hold = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(work / ".lock")],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BuildError, match="is in use by"):
            build_ogbench("pointmaze-medium-navigate", tmp_path, episodes=1, progress=False)
    finally:
        holder.kill()
    assert not list(work.glob("chunk-*"))


def test_a_run_on_built_data_records_who_made_and_read_it(tmp_path: Path, monkeypatch) -> None:
    from importlib.metadata import version

    build_ogbench(
        "pointmaze-medium-navigate", tmp_path, episodes=1, episode_steps=30, progress=False
    )
    monkeypatch.setenv("OGBENCH_DATASET_DIR", str(tmp_path))
    summary = load_dataset("ogbench:pointmaze-medium-navigate-singletask-v0").summary()
    made = summary["provenance"]["made_by"]
    assert made["ogbench"] == version("ogbench") and made["seed"] == 0
    assert made["recipe"]["name"] == "pointmaze-medium-navigate"
    assert summary["provenance"]["ogbench_relabelled_by"] == version("ogbench")


def test_two_worker_processes_write_the_files_one_process_writes(tmp_path: Path, monkeypatch):
    # the noisy recipe draws random actions and noise: all of it must follow the episode seed
    monkeypatch.setattr(ogbench_gen, "CHUNK_EPISODES", 1)
    args = {"episodes": 2, "episode_steps": 30, "progress": False}
    build_ogbench("cube-single-noisy", tmp_path / "one", **args)
    build_ogbench("cube-single-noisy", tmp_path / "two", workers=2, **args)
    for split in ("v0.npz", "v0-val.npz"):
        with np.load(tmp_path / "one" / f"cube-single-noisy-{split}") as a:
            with np.load(tmp_path / "two" / f"cube-single-noisy-{split}") as b:
                assert all(np.array_equal(a[k], b[k]) for k in a.files)
