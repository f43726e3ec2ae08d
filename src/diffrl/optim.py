"""Optimisation helpers shared by the agents and the dataset builder's SAC: Adam with gradient
clipping, one gradient step, learning-rate schedules, Polyak and EMA target updates."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

Params = Any


# -- steps -------------------------------------------------------------------------------
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
    loss_fn: Callable[[Params], tuple[jax.Array, dict]],
    params: Params,
    opt_state: Any,
    tx: optax.GradientTransformation,
    lr: jax.Array,
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


def diffusion_ql_schedule(
    base: float, decay: bool, mode: str, total_steps: int, eval_every: int
) -> LRSchedule:
    """Diffusion-QL's learning-rate rule: `clean` is a per-step cosine over `total_steps`;
    `reference` steps the cosine once per evaluation over `total_steps // 1000` epochs of
    `eval_every` steps, as the official code does."""
    if mode == "clean":
        return LRSchedule(base, decay, period=total_steps, interval=1)
    epochs = max(1, total_steps // 1000)
    return LRSchedule(base, decay, epochs * eval_every, eval_every)


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
