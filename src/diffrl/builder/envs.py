"""Checking and describing the Gymnasium environment a dataset is built in."""

from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym


class BuildError(RuntimeError):
    """A dataset cannot be built as asked. The message says what was expected and what was found."""


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    env_id: str
    env_kwargs: dict[str, Any]
    obs_dim: int
    action_dim: int
    action_low: float
    action_high: float
    max_episode_steps: int


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """`gym.make`, with unknown ids turned into a BuildError that suggests close names."""
    import gymnasium as gym

    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise BuildError(
            f"--env: expected a registered Gymnasium environment id (e.g. Hopper-v5), "
            f"found '{env_id}' ({exc}).{hint}"
        ) from None


def describe_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvInfo:
    """Sizes and bounds, refusing what the builder cannot handle (before any work starts)."""
    from gymnasium import spaces

    env = make_env(env_id, env_kwargs)
    try:
        act, obs = env.action_space, env.observation_space
        limit = env.spec.max_episode_steps if env.spec is not None else None
    finally:
        env.close()
    if not isinstance(act, spaces.Box) or len(act.shape) != 1:
        raise BuildError(
            f"{env_id}: expected a continuous action space (a 1-D gymnasium Box), found {act}; "
            f"SAC and the offline algorithms of diffrl need continuous actions."
        )
    low, high = np.asarray(act.low), np.asarray(act.high)
    uniform = np.all(low == low.flat[0]) and np.all(high == high.flat[0])
    if not (uniform and np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise BuildError(
            f"{env_id}: expected an action Box with one finite low/high for every dimension "
            f"(as OfflineDataset stores them), found low={low}, high={high}."
        )
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise BuildError(f"{env_id}: expected a flat Box observation space, found {obs}.")
    if not limit:
        raise BuildError(
            f"{env_id}: expected an episode time limit (max_episode_steps), found none; "
            f"pass one in the env kwargs."
        )
    return EnvInfo(
        env_id=env_id,
        env_kwargs=dict(env_kwargs or {}),
        obs_dim=int(obs.shape[0]),
        action_dim=int(act.shape[0]),
        action_low=float(low.flat[0]),
        action_high=float(high.flat[0]),
        max_episode_steps=int(limit),
    )
