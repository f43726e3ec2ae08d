"""EDM preconditioning, the truncated log-logistic σ sampler and the clipped EDM loss (§2.2)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl.diffusion import edm


@pytest.mark.parametrize(
    "sigma, expected",
    [
        (0.002, (1.0, 0.002, 2.0, -1.554)),
        (0.5, (0.5, 0.354, 1.414, -0.173)),
        (80.0, (3.9e-5, 0.49999, 0.0125, 1.096)),
    ],
)
def test_reference_values(sigma, expected):
    got = [float(x) for x in edm.preconditioning(sigma)]
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-6)


def test_preconditioning_formulas():
    sigma = np.geomspace(edm.SIGMA_MIN, edm.SIGMA_MAX, 50)
    sd = edm.SIGMA_DATA
    c_skip, c_out, c_in, c_noise = (np.asarray(x) for x in edm.preconditioning(sigma))
    np.testing.assert_allclose(c_skip, sd**2 / (sigma**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_out, sigma * sd / np.sqrt(sigma**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_in, 1 / np.sqrt(sigma**2 + sd**2), rtol=1e-5)
    np.testing.assert_allclose(c_noise, 0.25 * np.log(sigma), rtol=1e-5, atol=1e-6)


def test_sigma_sampler_quantiles():
    sigma = np.asarray(edm.sample_sigma(jax.random.PRNGKey(0), (100_000,)))
    assert sigma.min() >= edm.SIGMA_MIN and sigma.max() <= edm.SIGMA_MAX
    # spec §2.2: median 0.5; 50 % in [0.289, 0.866]; 90 % in [0.115, 2.18]
    q = np.quantile(sigma, [0.05, 0.25, 0.5, 0.75, 0.95])
    np.testing.assert_allclose(q, [0.115, 0.289, 0.5, 0.866, 2.18], rtol=0.03)
    # exact log-logistic CDF: P(σ ≤ x) = sigmoid((ln x − ln 0.5) / 0.5), truncation negligible
    for x in (0.05, 0.3, 1.0, 5.0):
        cdf = 1.0 / (1.0 + math.exp(-(math.log(x) - math.log(0.5)) / 0.5))
        assert abs((sigma <= x).mean() - cdf) < 0.005


def _score_fn(params):
    """A small nonlinear F(x, cond, c_noise) standing in for the score network."""

    def fn(x, cond, c_noise):
        return jnp.tanh(x @ params["wx"] + cond @ params["wc"] + c_noise) @ params["wo"]

    return fn


def _setup(a_dim=3, s_dim=4, batch=64):
    k = jax.random.split(jax.random.PRNGKey(3), 5)
    params = {
        "wx": jax.random.normal(k[0], (a_dim, 8)),
        "wc": jax.random.normal(k[1], (s_dim, 8)),
        "wo": 0.3 * jax.random.normal(k[2], (8, a_dim)),
    }
    cond = jax.random.normal(k[3], (batch, s_dim))
    x = jax.random.uniform(k[4], (batch, a_dim), minval=-0.8, maxval=0.8)
    return params, cond, x


def _loss_with_stops(score_fn, x, cond, key, stop_input: bool, stop_target: bool):
    """edm.loss written out with stop_gradient optionally on one of the two paths to x."""
    k_sigma, k_eps = jax.random.split(key)
    sigma = edm.sample_sigma(k_sigma, (x.shape[0], 1))
    x_in = jax.lax.stop_gradient(x) if stop_input else x
    target = jax.lax.stop_gradient(x) if stop_target else x
    x_sigma = x_in + sigma * jax.random.normal(k_eps, x.shape)
    denoised = jnp.clip(edm.denoise(score_fn, x_sigma, sigma, cond, edm.SIGMA_DATA), -1, 1)
    return jnp.mean(((denoised - target) / edm.preconditioning(sigma)[1]) ** 2)


def test_loss_matches_written_out_version_and_unclipped_edm_weighting():
    params, cond, x = _setup()
    key = jax.random.PRNGKey(7)
    fn = _score_fn(params)

    @jax.jit
    def losses(x):
        full = edm.loss(fn, x, cond, key)
        written_out = _loss_with_stops(fn, x, cond, key, False, False)
        # without clipping: EDM's loss with weight 1/c_out², i.e. (F − (x − c_skip x_σ)/c_out)²
        k_sigma, k_eps = jax.random.split(key)
        sigma = edm.sample_sigma(k_sigma, (x.shape[0], 1))
        x_sigma = x + sigma * jax.random.normal(k_eps, x.shape)
        c_skip, c_out, c_in, c_noise = edm.preconditioning(sigma)
        f = fn(c_in * x_sigma, cond, c_noise)
        expected = jnp.mean((f - (x - c_skip * x_sigma) / c_out) ** 2)
        return full, written_out, edm.loss(fn, x, cond, key, clip_denoised=False), expected

    full, written_out, unclipped, expected = losses(x)
    np.testing.assert_allclose(full, written_out, rtol=1e-6)
    np.testing.assert_allclose(unclipped, expected, rtol=1e-4)


def test_trust_region_gradient_reaches_the_action_through_both_paths():
    params, cond, x = _setup()
    key = jax.random.PRNGKey(11)
    fn = _score_fn(params)
    g_full = jax.grad(lambda a: edm.loss(fn, a, cond, key))(x)
    g_input = jax.grad(lambda a: _loss_with_stops(fn, a, cond, key, False, True))(x)
    g_target = jax.grad(lambda a: _loss_with_stops(fn, a, cond, key, True, False))(x)
    assert float(jnp.abs(g_input).max()) > 1e-3 and float(jnp.abs(g_target).max()) > 1e-3
    # the full gradient is the sum of the two paths, and differs from either alone
    np.testing.assert_allclose(g_full, g_input + g_target, rtol=1e-4, atol=1e-6)
    assert not np.allclose(g_full, g_input, atol=1e-4)
    assert not np.allclose(g_full, g_target, atol=1e-4)


def test_clipping_zeroes_the_gradient_outside_the_box():
    _, cond, x = _setup()
    far = {"bias": jnp.asarray(100.0)}  # F = 100 pushes every denoised value out of [-1, 1]

    def loss(p):
        return edm.loss(lambda xi, c, n: xi * 0 + p["bias"], x, cond, jax.random.PRNGKey(0))

    assert float(jax.grad(loss)(far)["bias"]) == 0.0
    unclipped = jax.grad(
        lambda p: edm.loss(
            lambda xi, c, n: xi * 0 + p["bias"], x, cond, jax.random.PRNGKey(0), clip_denoised=False
        )
    )(far)
    assert float(unclipped["bias"]) > 0.0
