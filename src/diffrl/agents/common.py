"""Pieces shared by the agents: optimisers, learning-rate schedules, EMA and Polyak updates,
Bellman targets, the normalised Q loss, observation normalisation and evaluation-time candidate
selection."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any


class Spec(NamedTuple):
    """What an agent needs to know about the data: sizes and the action box."""

    obs_dim: int
    action_dim: int
    max_action: float = 1.0


class Batch(NamedTuple):
    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    not_done: jax.Array


# -- optimisation -------------------------------------------------------------------------------
def adam(grad_norm: float) -> optax.GradientTransformation:
    """Adam's direction (PyTorch defaults) after global-norm clipping at `grad_norm` (≤ 0: off).

    The learning rate is applied separately (`apply_lr`) because the schedules depend on the
    agent's global step, not on how often this optimiser has been stepped.
    """
    parts = [optax.clip_by_global_norm(grad_norm)] if grad_norm > 0 else []
    return optax.chain(*parts, optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8))


def optimizer_step(
    tx: optax.GradientTransformation, grads: Params, opt_state: Any, params: Params, lr: jax.Array
) -> tuple[Params, Any, jax.Array]:
    """One clipped-Adam step with learning rate `lr`; also returns the raw gradient norm."""
    updates, opt_state = tx.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    return params, opt_state, global_norm(grads)


def gradient_step(
    loss_fn, params: Params, opt_state: Any, tx: optax.GradientTransformation, lr: jax.Array
) -> tuple[Params, Any, dict]:
    """Differentiate `loss_fn(params) -> (loss, aux dict)` and take one optimiser step; returns
    the new parameters, optimiser state and aux with the loss and gradient norm added under
    "loss" and "gn"."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    params, opt_state, gnorm = optimizer_step(tx, grads, opt_state, params, lr)
    return params, opt_state, {**aux, "loss": loss, "gn": gnorm}


def global_norm(tree: Params) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    """Cosine decay to 0 over `period` steps, evaluated on the step rounded down to `interval`.

    `interval = 1` is a true per-step cosine (clean mode). The official DQL/DiffCPS code steps
    `CosineAnnealingLR(T_max = epochs)` once per evaluation (every 50 epochs), which is
    `interval = 50 000` steps and `period = epochs × 50 000`: the rate barely moves (reference).
    """

    base: float
    decay: bool = False
    period: int = 1
    interval: int = 1

    def __call__(self, step: jax.Array) -> jax.Array:
        if not self.decay:
            return jnp.asarray(self.base, jnp.float32)
        k = (step // self.interval) * self.interval
        frac = jnp.minimum(k, self.period) / self.period
        return jnp.asarray(self.base * 0.5 * (1.0 + jnp.cos(math.pi * frac)), jnp.float32)


# -- target copies ------------------------------------------------------------------------------
def polyak(target: Params, online: Params, tau: float) -> Params:
    """target ← (1 − τ) target + τ online."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def ema_step(
    ema: Params,
    online: Params,
    step: jax.Array,
    decay: float,
    every: int,
    start: int,
    warm_start: bool,
) -> Params:
    """DQL's EMA actor: updated every `every` steps from `start`. Before `start` the copy stays at
    its initial weights (official behaviour) or, with `warm_start`, follows the online actor."""
    mixed = jax.tree.map(lambda e, o: decay * e + (1.0 - decay) * o, ema, online)
    do_ema = (step >= start) & (step % every == 0)
    before = online if warm_start else ema
    return jax.tree.map(
        lambda m, b, e: jnp.where(step < start, b, jnp.where(do_ema, m, e)), mixed, before, ema
    )


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


def nan_metrics(metrics_fn, *args) -> dict:
    """The metrics `metrics_fn(*args)` would return, all NaN, without running it: the value of a
    branch of `lax.cond` that skips a delayed update (the loop's chunk means are nan-means)."""
    shapes = jax.eval_shape(metrics_fn, *args)
    return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)


# -- observation normalisation ------------------------------------------------------------------
def observation_stats(observations, eps: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """(mean, std + eps) of the dataset's observations per dimension (population std, float64
    on the host), as TD3+BC normalises states."""
    obs = np.asarray(observations, np.float64)
    mean, std = obs.mean(axis=0), obs.std(axis=0) + eps
    return jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)


def normalize_obs(obs: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
    return (obs - mean) / std


# -- evaluation-time action choice --------------------------------------------------------------
SELECTIONS = ("none", "softmax", "argmax")


def require_plain_sampling(algo: str, selection: str | None, candidates: int | None) -> None:
    """Agents that do not rank candidate actions (no critic, or a deterministic actor) accept
    only plain actions: selection `none` (or unset) and at most one candidate."""
    if selection not in (None, "none") or candidates not in (None, 1):
        raise ValueError(
            f"{algo} does not rank candidate actions: selection must be 'none' and candidates 1 "
            f"(got selection={selection!r}, candidates={candidates!r})"
        )


def best_of_candidates(sample_fn, q_fn, obs: jax.Array, key: jax.Array, k: int, how: str):
    """Sample k actions per state with `sample_fn(obs, key)`, score them with `q_fn(obs, a)`
    (min-Q of the target critic) and pick one per state by `how` (softmax or argmax)."""
    k_sample, k_pick = jax.random.split(key)
    rep = jnp.repeat(obs, k, axis=0)
    cands = sample_fn(rep, k_sample)
    q = q_fn(rep, cands)
    b = obs.shape[0]
    return select_candidates(q.reshape(b, k), cands.reshape(b, k, -1), how, k_pick)


def select_candidates(q: jax.Array, actions: jax.Array, how: str, key: jax.Array) -> jax.Array:
    """Pick one of K candidates per state. q: (B, K), actions: (B, K, A).

    `softmax` draws an index from softmax(Q) at temperature 1, as the official DQL evaluation;
    `argmax` takes the best candidate.
    """
    if how == "softmax":
        idx = jax.random.categorical(key, q, axis=-1)
    elif how == "argmax":
        idx = jnp.argmax(q, axis=-1)
    else:
        raise ValueError(f"unknown candidate selection {how!r}: expected one of {SELECTIONS}")
    return jnp.take_along_axis(actions, idx[:, None, None], axis=1)[:, 0]
