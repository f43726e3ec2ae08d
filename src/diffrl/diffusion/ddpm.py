"""Discrete DDPM over actions: schedules, the ε-prediction loss and the ancestral sampler.

Follows ALGORITHMS.md §1.2 (Diffusion-QL's `agents/diffusion.py` as it runs): N steps indexed
t = 0..N-1, ε-prediction, x̂₀ clipped to the action box, fixed "small" posterior variance and no
noise at the last step. The sampler is differentiable through every denoiser call, which is what
Diffusion-QL's Q term back-propagates through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# eps_fn(x_t, t, cond) -> predicted noise, with t an int32 array of shape (B,)
EpsFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

SCHEDULES = ("vp", "linear", "cosine")


class Schedule(NamedTuple):
    """Buffers of a discrete diffusion with N steps (all float32 arrays of shape (N,))."""

    betas: jax.Array
    alphas_cumprod: jax.Array
    sqrt_alphas_cumprod: jax.Array
    sqrt_one_minus_alphas_cumprod: jax.Array
    sqrt_recip_alphas_cumprod: jax.Array
    sqrt_recipm1_alphas_cumprod: jax.Array
    posterior_mean_coef1: jax.Array
    posterior_mean_coef2: jax.Array
    posterior_std: jax.Array  # exp(½ log clip(β̃, 1e-20)); index 0 is never used (no noise)

    @property
    def n_steps(self) -> int:
        return int(self.betas.shape[0])


def betas_for(name: str, n_steps: int) -> np.ndarray:
    """β_1..β_N of the named schedule, in float64 (ALGORITHMS.md §1.2)."""
    if name == "vp":
        i = np.arange(1, n_steps + 1, dtype=np.float64)
        b_min, b_max = 0.1, 10.0
        alpha = np.exp(-b_min / n_steps - 0.5 * (b_max - b_min) * (2 * i - 1) / n_steps**2)
        return 1.0 - alpha
    if name == "linear":
        return np.linspace(1e-4, 2e-2, n_steps, dtype=np.float64)
    if name == "cosine":
        s = 0.008
        u = np.linspace(0, n_steps, n_steps + 1, dtype=np.float64) / n_steps
        abar = np.cos((u + s) / (1 + s) * math.pi * 0.5) ** 2
        abar = abar / abar[0]
        return np.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999)
    raise ValueError(f"unknown beta schedule {name!r}: expected one of {', '.join(SCHEDULES)}")


def make_schedule(name: str = "vp", n_steps: int = 5) -> Schedule:
    """All derived buffers, computed in float64 then stored as float32."""
    betas = betas_for(name, n_steps)
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    post_std = np.exp(0.5 * np.log(np.clip(post_var, 1e-20, None)))
    bufs = dict(
        betas=betas,
        alphas_cumprod=abar,
        sqrt_alphas_cumprod=np.sqrt(abar),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / abar),
        sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / abar - 1.0),
        posterior_mean_coef1=betas * np.sqrt(abar_prev) / (1.0 - abar),
        posterior_mean_coef2=(1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
        posterior_std=post_std,
    )
    return Schedule(**{k: jnp.asarray(v, jnp.float32) for k, v in bufs.items()})


def q_sample(sched: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε for per-sample integer steps t."""
    return (
        sched.sqrt_alphas_cumprod[t][:, None] * x0
        + sched.sqrt_one_minus_alphas_cumprod[t][:, None] * noise
    )


def eps_loss(
    sched: Schedule, eps_fn: EpsFn, x0: jax.Array, cond: jax.Array, key: jax.Array
) -> jax.Array:
    """L_bc: mean over batch and action dims of (ε_θ(x_t, t, s) − ε)², t ~ U{0..N−1}."""
    k_t, k_eps = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, sched.n_steps)
    noise = jax.random.normal(k_eps, x0.shape, x0.dtype)
    pred = eps_fn(q_sample(sched, x0, t, noise), t, cond)
    return jnp.mean((pred - noise) ** 2)


def sample(
    sched: Schedule,
    eps_fn: EpsFn,
    cond: jax.Array,
    key: jax.Array,
    action_dim: int,
    max_action: float = 1.0,
    clip_denoised: bool = True,
) -> jax.Array:
    """Ancestral sampling x_{N−1} → x₀ (§1.2); differentiable w.r.t. the denoiser's parameters.

    The loop is unrolled (N is small) so XLA fuses across steps; clipping uses `jnp.clip`, whose
    gradient is zero for clipped entries, as the official in-place clamp.
    """
    batch = cond.shape[0]
    # one draw for the initial x and every step's noise: one RNG kernel instead of two
    draws = jax.random.normal(key, (sched.n_steps + 1, batch, action_dim), cond.dtype)
    x, noises = draws[0], draws[1:]
    for i in reversed(range(sched.n_steps)):
        t = jnp.full((batch,), i, jnp.int32)
        eps = eps_fn(x, t, cond)
        x0 = sched.sqrt_recip_alphas_cumprod[i] * x - sched.sqrt_recipm1_alphas_cumprod[i] * eps
        if clip_denoised:
            x0 = jnp.clip(x0, -max_action, max_action)
        x = sched.posterior_mean_coef1[i] * x0 + sched.posterior_mean_coef2[i] * x
        if i > 0:  # no noise at the final step
            x = x + sched.posterior_std[i] * noises[i]
    return jnp.clip(x, -max_action, max_action)
