"""EDM (Karras et al. 2022) diffusion as DTQL's official code runs it (ALGORITHMS.md §2.2).

The diffusion model is never sampled in DTQL, only used as a loss: the same clipped, c_out-weighted
denoising loss trains the behaviour model on dataset actions and, evaluated at the one-step
policy's actions, is the policy's trust-region loss. `loss` therefore takes the action as a plain
argument and detaches nothing, so its gradient reaches that action through both the noised input
x_σ = a + σε and the regression target a.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
SIGMA_DATA = 0.5
# the official σ sampler: log-logistic with location ln σ_data and scale 0.5
LOGLOGISTIC_LOC = math.log(SIGMA_DATA)
LOGLOGISTIC_SCALE = 0.5

# F(c_in·x_σ, cond, c_noise) -> raw network output, same shape as x_σ
ScoreFn = Callable[[jax.Array, Any, jax.Array], jax.Array]


def preconditioning(
    sigma: jax.Array, sigma_data: float = SIGMA_DATA
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(c_skip, c_out, c_in, c_noise) of EDM's denoiser D = c_skip·x + c_out·F(c_in·x, c_noise)."""
    sigma = jnp.asarray(sigma, jnp.float32)
    total = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / total
    c_out = sigma * sigma_data / jnp.sqrt(total)
    c_in = 1.0 / jnp.sqrt(total)
    c_noise = 0.25 * jnp.log(sigma)
    return c_skip, c_out, c_in, c_noise


def sample_sigma(
    key: jax.Array,
    shape: tuple[int, ...],
    loc: float = LOGLOGISTIC_LOC,
    scale: float = LOGLOGISTIC_SCALE,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
) -> jax.Array:
    """Truncated log-logistic noise levels: ln σ = loc + scale·logit(u), u ~ U(F(ln σ_min),
    F(ln σ_max)) with F the logistic CDF — inverse-CDF sampling restricted to [σ_min, σ_max].

    The official code computes this in float64; the truncation bounds are ≈ 3e-5 and 1 − 5e-7, far
    inside float32's resolution around them, so float32 changes nothing measurable.
    """
    lo = jax.nn.sigmoid((math.log(sigma_min) - loc) / scale)
    hi = jax.nn.sigmoid((math.log(sigma_max) - loc) / scale)
    u = jax.random.uniform(key, shape, jnp.float32, lo, hi)
    return jnp.exp(loc + scale * jnp.log(u / (1.0 - u)))


def denoise(
    score_fn: ScoreFn, x_sigma: jax.Array, sigma: jax.Array, cond: Any, sigma_data: float
) -> jax.Array:
    """D(x_σ; σ, cond) with EDM's preconditioning; σ broadcasts against x_σ (e.g. shape (B, 1))."""
    c_skip, c_out, c_in, c_noise = preconditioning(sigma, sigma_data)
    return c_skip * x_sigma + c_out * score_fn(c_in * x_sigma, cond, c_noise)


def loss(
    score_fn: ScoreFn,
    x: jax.Array,
    cond: Any,
    key: jax.Array,
    max_action: float = 1.0,
    clip_denoised: bool = True,
    sigma_data: float = SIGMA_DATA,
) -> jax.Array:
    """mean[((clip(D(x + σε)) − x) / c_out)²] over batch and dimensions, fresh σ (one per row)
    and ε. Serves as the behaviour-cloning loss (x = dataset actions) and the trust-region loss
    (x = the policy's actions; nothing is detached). With clipping, coordinates whose denoised
    value leaves the action box get zero gradient, as `torch.clamp` gives.
    """
    k_sigma, k_eps = jax.random.split(key)
    sigma = sample_sigma(k_sigma, (*x.shape[:-1], 1))
    x_sigma = x + sigma * jax.random.normal(k_eps, x.shape, x.dtype)
    denoised = denoise(score_fn, x_sigma, sigma, cond, sigma_data)
    if clip_denoised:
        denoised = jnp.clip(denoised, -max_action, max_action)
    c_out = preconditioning(sigma, sigma_data)[1]
    return jnp.mean(((denoised - x) / c_out) ** 2)
