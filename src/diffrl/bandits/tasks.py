"""The 2-D bandit tasks of BANDITS.md: data generators, reward functions and action scaling.

A task lives in its own coordinates (its action box); agents train on actions scaled linearly to
[-1, 1]^2 (`to_unit`) and the metrics and plots work in task coordinates (`to_task_coords`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from diffrl.data.dataset import OfflineDataset

RewardFn = Callable[[np.ndarray], np.ndarray]

TASK_NAMES: tuple[str, ...] = (
    "corners",
    "cross",
    "grid25-far",
    "grid25-near",
    "grid25-hard",
    "swissroll-near",
    "swissroll-far",
    "circle",
)
ALIASES: dict[str, str] = {"grid25": "grid25-far", "swissroll": "swissroll-far"}
# Seed of the reference data set that fixes data-dependent task constants (the swiss-roll box,
# max(d) of the 'near' rewards). `sample_data(task, REFERENCE_SEED)` reproduces those points.
REFERENCE_SEED = 0
MODE_RADIUS_STDS = 4.0  # a point belongs to a mode when within this many std of its centre
SWISSROLL_NOISE = 0.1
CIRCLE_NOISE = 0.05


@dataclasses.dataclass(frozen=True, eq=False)
class BanditTask:
    """One 2-D bandit: where the data lie, what it pays, and what counts as in support.

    `reward_kind` says how `sample_data` draws data rewards: "mode" (N(mu_c, reward_noise^2) by
    the point's generating centre), "function" (`reward_fn` of the point) or "one" (always 1).
    `reward_fn` is the noise-free reward of any action in task coordinates; the metrics use it.
    """

    name: str
    family: str  # "mixture" (corners, cross), "grid25", "swissroll" or "circle"
    low: tuple[float, float]  # action box, per axis, in task coordinates
    high: tuple[float, float]
    delta: float  # support threshold (task coordinates)
    n_data: int
    centres: np.ndarray | None  # (K, 2) mode centres, None for tasks without modes
    mode_std: float | None  # per-axis std of each mode
    mode_means: np.ndarray | None  # (K,) mean reward per mode (reward at the centre for grid25)
    reward_fn: RewardFn
    reward_kind: str
    reward_noise: float  # std of the per-point reward noise ("mode" rewards only)
    best_modes: tuple[int, ...]  # indices of the tied best modes, () without modes
    best_reward: float  # best mode's mean, or max reward over the reference data

    @property
    def n_modes(self) -> int:
        return 0 if self.centres is None else len(self.centres)

    def clip(self, actions: np.ndarray) -> np.ndarray:
        """Actions clipped to the task's box."""
        return np.clip(actions, np.asarray(self.low), np.asarray(self.high))


# -- reward functions (module level so tasks stay picklable) ----------------------------------
def _norm(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(a, np.float64).reshape(-1, 2), axis=1)


def far_reward(a: np.ndarray) -> np.ndarray:
    """r = ||a||."""
    return _norm(a)


def near_reward(a: np.ndarray, d_max: float) -> np.ndarray:
    """r = max(d) - ||a||, with max(d) a task constant from the reference data."""
    return d_max - _norm(a)


def hard_reward(a: np.ndarray) -> np.ndarray:
    """r = ||a||, doubled where a_x < -7.5 and a_y > 7.5 (the top-left grid25 corner)."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    corner = (a[:, 0] < -7.5) & (a[:, 1] > 7.5)
    return _norm(a) * np.where(corner, 2.0, 1.0)


def ring_reward(a: np.ndarray, radius: float, width: float) -> np.ndarray:
    """1 within `width` of the circle of `radius`, else 0 (the circle task's noise-free reward)."""
    return (np.abs(_norm(a) - radius) <= width).astype(np.float64)


def mixture_reward(a: np.ndarray, centres: np.ndarray, std: float, means: np.ndarray) -> np.ndarray:
    """Mean of the nearest mode when within 4 std of its centre, else the lowest mode mean."""
    idx, inside = assign_modes(a, centres, std)
    return np.where(inside, means[idx], float(np.min(means)))


def assign_modes(a: np.ndarray, centres: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre index per action and whether it lies within 4 std (Euclidean) of it."""
    a = np.asarray(a, np.float64).reshape(-1, 2)
    d2 = ((a[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    idx = np.argmin(d2, axis=1)
    inside = d2[np.arange(len(a)), idx] <= (MODE_RADIUS_STDS * std) ** 2
    return idx, inside


# -- point generators -------------------------------------------------------------------------
def _mixture_points(
    rng: np.random.Generator, centres: np.ndarray, std: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Equal counts per mode (n must divide evenly), shuffled; returns (points, labels)."""
    labels = rng.permutation(np.repeat(np.arange(len(centres)), n // len(centres)))
    return centres[labels] + std * rng.standard_normal((n, 2)), labels


def _swissroll_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """scikit-learn-style swiss roll, coordinates (x, z), with N(0, 0.1^2) noise."""
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    return pts + SWISSROLL_NOISE * rng.standard_normal((n, 2))


def _circle_points(rng: np.random.Generator, n: int) -> np.ndarray:
    theta = 2.0 * np.pi * rng.random(n)
    pts = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return pts + CIRCLE_NOISE * rng.standard_normal((n, 2))


# -- task construction ------------------------------------------------------------------------
CORNER_CENTRES = np.array([[-0.8, 0.8], [-0.8, -0.8], [0.8, 0.8], [0.8, -0.8]])
CORNER_MEANS = np.array([3.0, 0.0, 1.5, 5.0])
CROSS_CENTRES = np.array([[0.0, 0.8], [0.8, 0.0], [0.0, -0.8], [-0.8, 0.0]])
CROSS_MEANS = np.array([0.0, 1.5, 5.0, 3.0])  # top, right, bottom, left
_GRID = np.linspace(-10.0, 10.0, 5)
GRID25_CENTRES = np.array([[x, y] for x in _GRID for y in _GRID])


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, np.float64)
    a.setflags(write=False)
    return a


def _best_modes(means: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(np.isclose(means, means.max())))


def _mixture_task(name: str, centres: np.ndarray, means: np.ndarray) -> BanditTask:
    std = 0.05
    fn = functools.partial(mixture_reward, centres=_readonly(centres), std=std, means=means)
    return BanditTask(
        name=name,
        family="mixture",
        low=(-1.0, -1.0),
        high=(1.0, 1.0),
        delta=0.1,
        n_data=10_000,
        centres=_readonly(centres),
        mode_std=std,
        mode_means=_readonly(means),
        reward_fn=fn,
        reward_kind="mode",
        reward_noise=0.5,
        best_modes=_best_modes(means),
        best_reward=float(means.max()),
    )


def _grid25_task(variant: str) -> BanditTask:
    low, high, std = (-10.5, -10.5), (10.5, 10.5), 0.3
    if variant == "near":
        ref, _ = _mixture_points(np.random.default_rng(REFERENCE_SEED), GRID25_CENTRES, std, 10_000)
        d_max = float(_norm(np.clip(ref, low, high)).max())
        fn: RewardFn = functools.partial(near_reward, d_max=d_max)
    else:
        fn = far_reward if variant == "far" else hard_reward
    means = fn(GRID25_CENTRES)
    return BanditTask(
        name=f"grid25-{variant}",
        family="grid25",
        low=low,
        high=high,
        delta=0.5,
        n_data=10_000,
        centres=_readonly(GRID25_CENTRES),
        mode_std=std,
        mode_means=_readonly(means),
        reward_fn=fn,
        reward_kind="function",
        reward_noise=0.0,
        best_modes=_best_modes(means),
        best_reward=float(means.max()),
    )


def _swissroll_box(ref: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    pad = 0.05 * (hi - lo)
    low, high = lo - pad, hi + pad
    return (float(low[0]), float(low[1])), (float(high[0]), float(high[1]))


def _swissroll_task(variant: str) -> BanditTask:
    ref = _swissroll_points(np.random.default_rng(REFERENCE_SEED), 10_000)
    low, high = _swissroll_box(ref)
    d = _norm(ref)
    fn: RewardFn = far_reward
    if variant == "near":
        fn = functools.partial(near_reward, d_max=float(d.max()))
    return BanditTask(
        name=f"swissroll-{variant}",
        family="swissroll",
        low=low,
        high=high,
        delta=0.5,
        n_data=10_000,
        centres=None,
        mode_std=None,
        mode_means=None,
        reward_fn=fn,
        reward_kind="function",
        reward_noise=0.0,
        best_modes=(),
        best_reward=float(fn(ref).max()),
    )


def _circle_task() -> BanditTask:
    fn = functools.partial(ring_reward, radius=1.0, width=MODE_RADIUS_STDS * CIRCLE_NOISE)
    return BanditTask(
        name="circle",
        family="circle",
        low=(-1.5, -1.5),
        high=(1.5, 1.5),
        delta=0.1,
        n_data=5_000,
        centres=None,
        mode_std=None,
        mode_means=None,
        reward_fn=fn,
        reward_kind="one",
        reward_noise=0.0,
        best_modes=(),
        best_reward=1.0,
    )


def make_task(name: str) -> BanditTask:
    """The task called `name` (one of TASK_NAMES, or the aliases 'grid25' and 'swissroll').

    Tasks are built once and cached: an alias returns the same object as its full name.
    """
    return _build_task(ALIASES.get(name, name))


@functools.cache
def _build_task(canonical: str) -> BanditTask:
    if canonical == "corners":
        return _mixture_task("corners", CORNER_CENTRES, CORNER_MEANS)
    if canonical == "cross":
        return _mixture_task("cross", CROSS_CENTRES, CROSS_MEANS)
    if canonical.startswith("grid25-") and canonical[7:] in ("far", "near", "hard"):
        return _grid25_task(canonical[7:])
    if canonical.startswith("swissroll-") and canonical[10:] in ("far", "near"):
        return _swissroll_task(canonical[10:])
    if canonical == "circle":
        return _circle_task()
    known = ", ".join(TASK_NAMES + tuple(ALIASES))
    raise ValueError(f"unknown bandit task '{canonical}': expected one of {known}")


def _as_task(task_or_name: BanditTask | str) -> BanditTask:
    return make_task(task_or_name) if isinstance(task_or_name, str) else task_or_name


# -- data -------------------------------------------------------------------------------------
def sample_data(task: BanditTask | str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(actions (M, 2) in task coordinates, clipped to the box; rewards (M,)), fixed by `seed`."""
    task = _as_task(task)
    rng = np.random.default_rng(seed)
    labels = None
    if task.centres is not None:
        points, labels = _mixture_points(rng, task.centres, task.mode_std, task.n_data)
    elif task.family == "swissroll":
        points = _swissroll_points(rng, task.n_data)
    else:
        points = _circle_points(rng, task.n_data)
    points = task.clip(points)
    if task.reward_kind == "mode":
        noise = task.reward_noise * rng.standard_normal(task.n_data)
        rewards = task.mode_means[labels] + noise
    elif task.reward_kind == "function":
        rewards = task.reward_fn(points)
    else:
        rewards = np.ones(task.n_data)
    return points, rewards


def to_unit(task: BanditTask | str, actions_task: np.ndarray) -> np.ndarray:
    """Task coordinates -> [-1, 1]^2 (linear per axis)."""
    task = _as_task(task)
    low, high = np.asarray(task.low), np.asarray(task.high)
    return 2.0 * (np.asarray(actions_task) - low) / (high - low) - 1.0


def to_task_coords(task: BanditTask | str, actions_unit: np.ndarray) -> np.ndarray:
    """[-1, 1]^2 -> task coordinates (inverse of `to_unit`)."""
    task = _as_task(task)
    low, high = np.asarray(task.low), np.asarray(task.high)
    return low + (np.asarray(actions_unit) + 1.0) * (high - low) / 2.0


def make_bandit_dataset(task_or_name: BanditTask | str, seed: int = 0) -> OfflineDataset:
    """The task's data as one-step transitions: zero states, terminal, actions in [-1, 1]^2."""
    task = _as_task(task_or_name)
    points, rewards = sample_data(task, seed)
    m = len(points)
    actions = np.clip(to_unit(task, points).astype(np.float32), -1.0, 1.0)
    return OfflineDataset(
        observations=np.zeros((m, 2), np.float32),
        actions=actions,
        rewards=rewards.astype(np.float32),
        next_observations=np.zeros((m, 2), np.float32),
        terminals=np.ones(m, np.bool_),
        timeouts=np.zeros(m, np.bool_),
        source=f"bandit:{task.name}",
        name=f"bandit:{task.name}",
        action_low=-1.0,
        action_high=1.0,
    )
