"""`OfflineDataset`: validated transition arrays, the one thing every agent trains on."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np


class DatasetError(ValueError):
    """A dataset could not be used. The message names the source, the field, expected vs found."""


def dataset_error(source: str, field: str, expected: str, found: str) -> DatasetError:
    """Build the one-paragraph error every loader raises for bad input."""
    return DatasetError(
        f"{source}: field '{field}' is not usable: expected {expected}, found {found}."
    )


@dataclasses.dataclass(frozen=True, eq=False)
class OfflineDataset:
    """Transitions (s, a, r, s', terminal, timeout) plus what is known about where they came from.

    Arrays are validated on construction; a bad array raises `DatasetError` naming `source`.
    """

    observations: np.ndarray  # (N, S) float32
    actions: np.ndarray  # (N, A) float32
    rewards: np.ndarray  # (N,) float32
    next_observations: np.ndarray  # (N, S) float32
    terminals: np.ndarray  # (N,) bool: true environment termination, no bootstrap
    timeouts: np.ndarray  # (N,) bool: episode cut by a time limit (bootstrap still valid)
    source: str = "<arrays>"  # file or spec the data came from, used in every error message
    name: str | None = None  # e.g. "hopper-medium-v2": keys reference returns and presets
    env_id: str | None = None  # gymnasium id to evaluate in, when the data records one
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    ref_min_score: float | None = None  # return of a random policy (normalised score 0)
    ref_max_score: float | None = None  # return of an expert policy (normalised score 100)
    action_low: float = -1.0  # box the actions must lie in (scalar bound, as the papers use)
    action_high: float = 1.0
    episode_returns: np.ndarray | None = None  # returns of complete episodes in the raw data
    reward_transform: str = "no"  # name of the transform already applied to `rewards`
    # what made and read the data, when known (e.g. the OGBench version), recorded with each run
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    # -- validation -------------------------------------------------------------------------
    def _validate(self) -> None:
        self._validate_shapes()
        self._validate_dtypes_and_values()
        self._validate_action_bounds()

    def _validate_shapes(self) -> None:
        src = self.source
        for field in ("observations", "actions", "next_observations"):
            arr = getattr(self, field)
            if not isinstance(arr, np.ndarray) or arr.ndim != 2:
                raise dataset_error(src, field, "a 2-D array (N, dim)", _describe(arr))
        for field in ("rewards", "terminals", "timeouts"):
            arr = getattr(self, field)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise dataset_error(src, field, "a 1-D array (N,)", _describe(arr))
        n = len(self.observations)
        if n == 0:
            raise dataset_error(src, "observations", "at least one transition", "0 rows")
        for field in ("actions", "rewards", "next_observations", "terminals", "timeouts"):
            if len(getattr(self, field)) != n:
                raise dataset_error(
                    src, field, f"{n} rows (as 'observations')", f"{len(getattr(self, field))}"
                )
        if self.next_observations.shape[1] != self.observations.shape[1]:
            raise dataset_error(
                src,
                "next_observations",
                f"{self.observations.shape[1]} columns (as 'observations')",
                f"{self.next_observations.shape[1]}",
            )

    def _validate_dtypes_and_values(self) -> None:
        src, n = self.source, len(self.observations)
        for field in ("observations", "actions", "rewards", "next_observations"):
            arr = getattr(self, field)
            if arr.dtype != np.float32:
                raise dataset_error(src, field, "dtype float32", str(arr.dtype))
            if not np.all(np.isfinite(arr)):
                bad = int(np.flatnonzero(~np.isfinite(arr).reshape(n, -1).all(axis=1))[0])
                raise dataset_error(src, field, "finite values", f"NaN or inf at row {bad}")
        for field in ("terminals", "timeouts"):
            if getattr(self, field).dtype != np.bool_:
                raise dataset_error(src, field, "dtype bool", str(getattr(self, field).dtype))

    def _validate_action_bounds(self) -> None:
        src = self.source
        if not self.action_low < self.action_high:
            raise dataset_error(
                src, "action bounds", "low < high", f"[{self.action_low}, {self.action_high}]"
            )
        tol = 1e-5 * max(1.0, abs(self.action_high), abs(self.action_low))
        lo, hi = float(self.actions.min()), float(self.actions.max())
        if lo < self.action_low - tol or hi > self.action_high + tol:
            raise dataset_error(
                src,
                "actions",
                f"values within the action bounds [{self.action_low}, {self.action_high}]",
                f"values in [{lo:.6g}, {hi:.6g}]",
            )

    # -- facts ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def replace(self, **changes: Any) -> OfflineDataset:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """SHA-256 over the training arrays: a checkpoint records it to refuse foreign data."""
        h = hashlib.sha256()
        for field in ("observations", "actions", "rewards", "next_observations", "terminals"):
            h.update(np.ascontiguousarray(getattr(self, field)).tobytes())
        return h.hexdigest()[:16]

    def normalized_score(self, episode_return: float | np.ndarray) -> float | np.ndarray | None:
        """D4RL-style normalised score ×100, or None when no reference returns are known."""
        if self.ref_min_score is None or self.ref_max_score is None:
            return None
        span = self.ref_max_score - self.ref_min_score
        return 100.0 * (np.asarray(episode_return) - self.ref_min_score) / span

    def summary(self) -> dict[str, Any]:
        """What `diffrl info` prints: sizes, episodes, return statistics, reference returns."""
        rets = self.episode_returns
        has_rets = rets is not None and len(rets) > 0
        return {
            "source": self.source,
            "name": self.name,
            "env_id": self.env_id,
            "transitions": self.size,
            "episodes": int(len(rets)) if rets is not None else None,
            "terminals": int(self.terminals.sum()),
            "timeouts": int(self.timeouts.sum()),
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "action_bounds": [self.action_low, self.action_high],
            "reward_mean": float(self.rewards.mean()),
            "reward_std": float(self.rewards.std()),
            "return_mean": float(np.mean(rets)) if has_rets else None,
            "return_std": float(np.std(rets)) if has_rets else None,
            "return_min": float(np.min(rets)) if has_rets else None,
            "return_max": float(np.max(rets)) if has_rets else None,
            "ref_min_score": self.ref_min_score,
            "ref_max_score": self.ref_max_score,
            "reward_transform": self.reward_transform,
            **({"provenance": self.provenance} if self.provenance else {}),
        }


def episode_returns_from_flags(
    rewards: np.ndarray, terminals: np.ndarray, timeouts: np.ndarray
) -> np.ndarray:
    """Returns of the complete episodes in raw (unfiltered) arrays, split on terminal | timeout."""
    ends = np.flatnonzero(np.asarray(terminals, bool) | np.asarray(timeouts, bool))
    if len(ends) == 0:
        return np.zeros(0, np.float64)
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(rewards, np.float64))])
    starts = np.concatenate([[0], ends[:-1] + 1])
    return csum[ends + 1] - csum[starts]


def _describe(arr: Any) -> str:
    if isinstance(arr, np.ndarray):
        return f"an array of shape {arr.shape} and dtype {arr.dtype}"
    return f"a {type(arr).__name__}"
