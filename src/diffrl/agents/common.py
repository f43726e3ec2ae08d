"""Pieces shared by the agents: Bellman targets, the normalised Q loss, NaN metrics for skipped
updates and observation normalisation. (Optimisers live in `diffrl.optim`, the action choice in
`diffrl.acting`.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = Any


# -- losses -------------------------------------------------------------------------------------
def bellman_target(
    rewards: jax.Array,
    not_done: jax.Array,
    target_q: jax.Array,
    gamma: float,
    n_samples: int = 1,
) -> jax.Array:
    """y = r + γ (1 − d) Q'. `target_q` is (2, B·n) for n next actions per state: with n > 1 the
    max over samples is taken per head, then the min over heads (max-Q backup)."""
    q = target_q.reshape(2, -1, n_samples).max(axis=-1)
    return jax.lax.stop_gradient(rewards + gamma * not_done * q.min(axis=0))


def normalized_q_loss(q_pi: jax.Array, key: jax.Array) -> jax.Array:
    """−mean Q_i(s, a_π) / sg(mean |Q_j(s, a_π)|) with the head i chosen at random (§1.4)."""
    first = jax.random.uniform(key) > 0.5
    q_max = jnp.where(first, q_pi[0], q_pi[1])
    q_norm = jnp.where(first, q_pi[1], q_pi[0])
    return -q_max.mean() / jax.lax.stop_gradient(jnp.abs(q_norm).mean())


def nan_metrics(metrics_fn: Callable[..., Any], *args: Any) -> dict[str, jax.Array]:
    """The metrics `metrics_fn(*args)` would return, all NaN, without running it: the value of a
    branch of `lax.cond` that skips a delayed update (the loop's chunk means are nan-means)."""
    shapes = jax.eval_shape(metrics_fn, *args)
    return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)


# -- observation normalisation ------------------------------------------------------------------
def observation_stats(
    observations: np.ndarray | jax.Array, eps: float = 1e-3
) -> tuple[jax.Array, jax.Array]:
    """(mean, std + eps) of the dataset's observations per dimension (population std, float64
    on the host), as TD3+BC normalises states."""
    obs = np.asarray(observations, np.float64)
    mean, std = obs.mean(axis=0), obs.std(axis=0) + eps
    return jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)


def normalize_obs(obs: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    return (obs - mean) / std
