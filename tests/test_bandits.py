"""The 2-D bandit tasks: data sets, scaling, metrics and plots (BANDITS.md)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from runhelpers import assert_png_has_content

from diffrl.bandits import (
    TASK_NAMES,
    bandit_metrics,
    make_bandit_dataset,
    make_task,
    plot_panels,
    sample_data,
    to_task_coords,
    to_unit,
)
from diffrl.bandits.metrics import nearest_data_distance, support_rate
from diffrl.data.dataset import OfflineDataset

CORNER_MEANS = {(-0.8, 0.8): 3.0, (-0.8, -0.8): 0.0, (0.8, 0.8): 1.5, (0.8, -0.8): 5.0}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_dataset_shapes_dtypes_flags(name: str) -> None:
    task = make_task(name)
    ds = make_bandit_dataset(name, seed=0)
    m = task.n_data
    assert isinstance(ds, OfflineDataset)
    assert ds.observations.shape == (m, 2) and ds.next_observations.shape == (m, 2)
    assert ds.actions.shape == (m, 2) and ds.rewards.shape == (m,)
    for arr in (ds.observations, ds.actions, ds.rewards, ds.next_observations):
        assert arr.dtype == np.float32
    assert not ds.observations.any() and not ds.next_observations.any()
    assert ds.terminals.all() and not ds.timeouts.any()
    assert ds.terminals.dtype == np.bool_ and ds.timeouts.dtype == np.bool_
    assert (ds.action_low, ds.action_high) == (-1.0, 1.0)
    assert ds.actions.min() >= -1.0 and ds.actions.max() <= 1.0
    assert ds.name == ds.source == f"bandit:{task.name}"


def test_sizes_and_aliases() -> None:
    assert make_task("corners").n_data == 10_000 and make_task("circle").n_data == 5_000
    assert make_task("grid25") is make_task("grid25-far")
    assert make_task("swissroll").name == "swissroll-far"
    with pytest.raises(ValueError, match="unknown bandit task"):
        make_task("grid26")


@pytest.mark.parametrize("name", ["corners", "grid25-hard", "swissroll-near", "circle"])
def test_determinism_in_seed(name: str) -> None:
    a0, r0 = sample_data(name, seed=3)
    a1, r1 = sample_data(name, seed=3)
    a2, _ = sample_data(name, seed=4)
    np.testing.assert_array_equal(a0, a1)
    np.testing.assert_array_equal(r0, r1)
    assert not np.allclose(a0, a2)
    d0, d1 = make_bandit_dataset(name, seed=3), make_bandit_dataset(name, seed=3)
    assert d0.fingerprint() == d1.fingerprint()
    assert d0.fingerprint() != make_bandit_dataset(name, seed=4).fingerprint()


def _nearest_corner(actions: np.ndarray) -> np.ndarray:
    centres = np.array(list(CORNER_MEANS))
    return np.argmin(((actions[:, None] - centres[None]) ** 2).sum(-1), axis=1)


def test_corners_modes_and_reward_means() -> None:
    task = make_task("corners")
    assert {tuple(c) for c in task.centres} == set(CORNER_MEANS)
    actions, rewards = sample_data(task, seed=0)
    idx = _nearest_corner(actions)
    shares = np.bincount(idx, minlength=4) / len(idx)
    np.testing.assert_allclose(shares, 0.25, atol=0.02)
    centres = np.array(list(CORNER_MEANS))
    assert np.abs(actions - centres[idx]).max() < 0.3  # std 0.05 per axis
    for k, mu in enumerate(CORNER_MEANS.values()):
        r = rewards[idx == k]
        assert abs(r.mean() - mu) < 0.05  # 2,500 draws of N(mu, 0.5^2): se 0.01
        assert abs(r.std() - 0.5) < 0.05
    assert [tuple(task.centres[i]) for i in task.best_modes] == [(0.8, -0.8)]
    assert task.best_reward == 5.0


def test_cross_bottom_mode_is_best() -> None:
    task = make_task("cross")
    assert [tuple(task.centres[i]) for i in task.best_modes] == [(0.0, -0.8)]


def test_grid25_scaling_round_trip() -> None:
    task = make_task("grid25")
    assert task.low == (-10.5, -10.5) and task.high == (10.5, 10.5)
    pts, _ = sample_data(task, seed=0)
    unit = to_unit(task, pts)
    np.testing.assert_allclose(to_task_coords(task, unit), pts, atol=1e-9)
    np.testing.assert_allclose(
        to_unit(task, np.array([[-10.5, 10.5], [0.0, 5.25]])), [[-1.0, 1.0], [0.0, 0.5]]
    )
    ds = make_bandit_dataset(task, seed=0)
    np.testing.assert_allclose(to_task_coords(task, ds.actions), pts, atol=1e-4)


def test_grid25_variants_best_modes() -> None:
    corners = {(-10.0, -10.0), (-10.0, 10.0), (10.0, -10.0), (10.0, 10.0)}
    far, near, hard = (make_task(f"grid25-{v}") for v in ("far", "near", "hard"))
    assert {tuple(far.centres[i]) for i in far.best_modes} == corners
    assert [tuple(near.centres[i]) for i in near.best_modes] == [(0.0, 0.0)]
    assert [tuple(hard.centres[i]) for i in hard.best_modes] == [(-10.0, 10.0)]
    pts, rewards = sample_data(far, seed=0)
    np.testing.assert_allclose(rewards, np.linalg.norm(pts, axis=1))


def test_swissroll_box_covers_data_and_near_far() -> None:
    far, near = make_task("swissroll-far"), make_task("swissroll-near")
    assert far.low == near.low and far.high == near.high
    pts, r_far = sample_data(far, seed=0)
    _, r_near = sample_data(near, seed=0)
    span = pts.max(0) - pts.min(0)
    np.testing.assert_allclose(pts.min(0) - np.array(far.low), 0.05 * span)
    np.testing.assert_allclose(np.array(far.high) - pts.max(0), 0.05 * span)
    np.testing.assert_allclose(r_near, r_far.max() - r_far)


def test_circle_data() -> None:
    pts, rewards = sample_data("circle", seed=0)
    assert np.all(rewards == 1.0)
    assert abs(np.linalg.norm(pts, axis=1).mean() - 1.0) < 0.01


def test_metrics_all_on_best_mode() -> None:
    task = make_task("corners")
    data, _ = sample_data(task, seed=0)
    rng = np.random.default_rng(0)
    best = np.array([0.8, -0.8]) + 0.02 * rng.standard_normal((1000, 2))
    m = bandit_metrics(task, data, best)
    assert m["support_rate"] == 1.0 and m["best_mode_share"] == 1.0
    assert m["mode_shares"] == [0.0, 0.0, 0.0, 1.0]
    assert m["mean_true_reward"] == 5.0 and m["best_reward"] == 5.0
    assert m["n_samples"] == 1000
    json.dumps(m)


def test_metrics_origin_off_support() -> None:
    task = make_task("corners")
    data, _ = sample_data(task, seed=0)
    m = bandit_metrics(task, data, np.zeros((100, 2)))
    assert m["support_rate"] == 0.0 and m["best_mode_share"] == 0.0
    assert m["mode_shares"] == [0.0] * 4
    assert m["mean_true_reward"] == 0.0  # out of every mode: the lowest mode mean


def test_metrics_uniform_spread_low_support() -> None:
    task = make_task("corners")
    data, _ = sample_data(task, seed=0)
    grid = np.linspace(-1.0, 1.0, 40)
    uniform = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    m = bandit_metrics(task, data, uniform)
    assert m["support_rate"] < 0.3
    assert sum(m["mode_shares"]) < 0.3


def test_metrics_data_as_samples_reproduces_equal_shares() -> None:
    task = make_task("cross")
    data, _ = sample_data(task, seed=0)
    samples, _ = sample_data(task, seed=1)
    m = bandit_metrics(task, data, samples[:1000])
    assert m["support_rate"] > 0.98
    np.testing.assert_allclose(m["mode_shares"], 0.25, atol=0.05)
    assert abs(m["mean_true_reward"] - np.mean([0.0, 1.5, 5.0, 3.0])) < 0.2


def test_metrics_function_and_modeless_tasks() -> None:
    far = make_task("grid25-far")
    data, _ = sample_data(far, seed=0)
    corner_pts = np.array([[-10, -10], [-10, 10], [10, -10], [10, 10]] * 25, float)
    m = bandit_metrics(far, data, corner_pts)
    assert m["best_mode_share"] == 1.0 and m["support_rate"] == 1.0
    assert abs(m["mean_true_reward"] - m["best_reward"]) < 1e-9
    roll = make_task("swissroll-far")
    rdata, _ = sample_data(roll, seed=0)
    mr = bandit_metrics(roll, rdata, rdata[:500])
    assert mr["mode_shares"] is None and mr["best_mode_share"] is None
    assert mr["support_rate"] == 1.0
    circle = make_task("circle")
    cdata, _ = sample_data(circle, seed=0)
    mc = bandit_metrics(circle, cdata, np.zeros((50, 2)))
    assert mc["support_rate"] == 0.0 and mc["mean_true_reward"] == 0.0
    assert bandit_metrics(circle, cdata, cdata[:50])["mean_true_reward"] == 1.0


def test_support_rate_of_1000_samples_against_10000_points_is_exact_and_fast() -> None:
    task = make_task("grid25-near")
    data, _ = sample_data(task, seed=0)
    samples, _ = sample_data(task, seed=1)
    t0 = time.perf_counter()
    m = bandit_metrics(task, data, samples[:1000])
    seconds = time.perf_counter() - t0
    # about 0.2-0.45 s on two loaded cores (a numpy product in blocks of samples); 5 s is a 10x
    # margin that a quadratic Python loop or an all-pairs array per call would not meet
    assert seconds < 5.0, f"bandit_metrics took {seconds:.1f} s for 1000 x 10000 points"
    assert len(data) == 10_000 and m["n_samples"] == 1000
    assert m["support_rate"] > 0.99  # samples of the data's own distribution lie on its support
    # the blocked distance agrees with the plain all-pairs one on a subset
    exact = np.linalg.norm(samples[:200, None] - data[None], axis=-1).min(axis=1)
    np.testing.assert_allclose(nearest_data_distance(data, samples[:200]), exact, atol=1e-6)
    assert support_rate(task, data, samples[:1000] + 100.0) == 0.0  # all far from the data


def test_plot_writes_png_and_refuses_overwrite(tmp_path) -> None:
    task = make_task("corners")
    data, rewards = sample_data(task, seed=0)
    path = tmp_path / "sub" / "corners.png"
    panels = {"bc": data[:200], "uniform": np.zeros((10, 2))}
    out = plot_panels(task, data, rewards, panels, path)
    assert out == path and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # three 3.2-inch panels plus the colour bar's 0.6 inch, at 100 dpi; data, samples and axes
    assert assert_png_has_content(path, 1020, 320, min_colours=50, min_ink=0.05) == (1020, 320)
    with pytest.raises(FileExistsError):
        plot_panels(task, data, rewards, panels, path)
    plot_panels(task, data, rewards, {"only": data[:5]}, path, overwrite=True)
    assert assert_png_has_content(path, 700, 320, min_colours=50, min_ink=0.05) == (700, 320)
