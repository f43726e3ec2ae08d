"""DDPM schedules, loss and sampler (ALGORITHMS.md §1.2); the networks of §1.1 are in test_nets.py.

Oracles are written independently of the code under test: float64 numpy formulas from the spec,
hand-computed MLPs, and the recorded inputs of every denoiser call of the sampler.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl.diffusion import ddpm

N = 5


# -- schedules ----------------------------------------------------------------------------------
def test_vp_schedule_matches_spec_table():
    sched = ddpm.make_schedule("vp", N)
    assert sched.n_steps == N
    np.testing.assert_allclose(
        sched.betas, [0.19587, 0.45882, 0.63578, 0.75488, 0.83503], atol=1e-5
    )
    np.testing.assert_allclose(
        sched.alphas_cumprod, [0.80413, 0.43518, 0.15850, 0.03885, 0.00641], atol=1e-5
    )
    np.testing.assert_allclose(
        sched.posterior_std, [0.0, 0.39889, 0.65325, 0.81296, 0.89876], atol=1e-5
    )
    for buf in sched:
        assert buf.dtype == jnp.float32 and buf.shape == (N,)


def test_vp_betas_follow_formula_and_derived_buffers():
    n = 7
    i = np.arange(1, n + 1, dtype=np.float64)
    betas = 1.0 - np.exp(-0.1 / n - 0.5 * (10.0 - 0.1) * (2 * i - 1) / n**2)
    np.testing.assert_allclose(ddpm.betas_for("vp", n), betas, rtol=1e-12)

    sched = ddpm.make_schedule("vp", n)
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    expect = {
        "alphas_cumprod": abar,
        "sqrt_alphas_cumprod": np.sqrt(abar),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1 - abar),
        "sqrt_recip_alphas_cumprod": 1 / np.sqrt(abar),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1 / abar - 1),
        "posterior_mean_coef1": betas * np.sqrt(abar_prev) / (1 - abar),
        "posterior_mean_coef2": (1 - abar_prev) * np.sqrt(1 - betas) / (1 - abar),
        "posterior_std": np.sqrt(np.maximum(betas * (1 - abar_prev) / (1 - abar), 1e-20)),
    }
    for name, value in expect.items():
        np.testing.assert_allclose(getattr(sched, name), value, rtol=2e-6, err_msg=name)
    # t = 0 has zero posterior variance: the clipped log variance gives std 1e-10
    assert float(sched.posterior_std[0]) < 1e-9


def test_linear_schedule_endpoints():
    b = ddpm.betas_for("linear", 10)
    assert b[0] == pytest.approx(1e-4, rel=1e-12)
    assert b[-1] == pytest.approx(2e-2, rel=1e-12)
    np.testing.assert_allclose(np.diff(b), (2e-2 - 1e-4) / 9, rtol=1e-9)
    np.testing.assert_allclose(ddpm.make_schedule("linear", 10).betas, b, rtol=1e-6)


@pytest.mark.parametrize("n", [5, 20, 100])
def test_cosine_schedule(n):
    s = 0.008
    betas = ddpm.betas_for("cosine", n)
    assert betas.shape == (n,)
    assert np.all(betas <= 0.999) and np.all(betas >= 0.0)
    assert betas[-1] == pytest.approx(0.999)  # ᾱ(1) = 0: the last β is the clipped one

    def f(u):
        return np.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    abar_formula = f(np.arange(1, n + 1) / n) / f(0.0)
    abar = np.asarray(ddpm.make_schedule("cosine", n).alphas_cumprod, np.float64)
    assert np.all(np.diff(abar) < 0)
    # the clip only acts on the last step; before it ᾱ is the closed form
    np.testing.assert_allclose(abar[:-1], abar_formula[:-1], rtol=1e-5)
    np.testing.assert_allclose(np.cumprod(1 - betas)[:-1], abar_formula[:-1], rtol=1e-10)


@pytest.mark.parametrize("fn", [ddpm.betas_for, ddpm.make_schedule])
def test_unknown_schedule_raises(fn):
    with pytest.raises(ValueError, match="unknown beta schedule"):
        fn("quadratic", 5)


# -- q_sample and the ε loss ----------------------------------------------------------------------
def test_q_sample_formula():
    sched = ddpm.make_schedule("vp", N)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(6, 3)).astype(np.float32)
    noise = rng.normal(size=(6, 3)).astype(np.float32)
    t = np.array([0, 1, 2, 3, 4, 2])
    betas = ddpm.betas_for("vp", N)
    abar = np.cumprod(1 - betas)[t][:, None]
    expect = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise
    got = jax.jit(ddpm.q_sample)(sched, jnp.asarray(x0), jnp.asarray(t), jnp.asarray(noise))
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)


def _oracle(sched, x0, offset=0.0):
    """An ε-predictor that recovers the true noise from x_t and the known x₀ (plus `offset`)."""

    def eps_fn(x_t, t, cond):
        a = sched.sqrt_alphas_cumprod[t][:, None]
        b = sched.sqrt_one_minus_alphas_cumprod[t][:, None]
        return (x_t - a * x0) / b + offset

    return eps_fn


def test_eps_loss_zero_for_oracle_positive_otherwise():
    sched = ddpm.make_schedule("vp", N)

    @jax.jit
    def losses(x0, cond, key):
        def loss(eps_fn):
            return ddpm.eps_loss(sched, eps_fn, x0, cond, key)

        return (
            loss(_oracle(sched, x0)),
            loss(_oracle(sched, x0, 0.3)),
            loss(lambda x, t, c: jnp.zeros_like(x)),
        )

    x0 = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, size=(512, 3)), jnp.float32)
    exact, shifted, zero = losses(x0, jnp.zeros((512, 4)), jax.random.PRNGKey(1))
    assert float(exact) < 1e-10
    # a constant error c on every entry costs exactly c² (mean over batch and action dims)
    assert float(shifted) == pytest.approx(0.09, rel=1e-4)
    # predicting 0 costs E[ε²] ≈ 1
    assert 0.85 < float(zero) < 1.15


def test_eps_loss_draws_every_step_and_passes_cond():
    sched = ddpm.make_schedule("vp", N)

    @jax.jit
    def run(x0, cond, key):
        seen = {}

        def eps_fn(x, t, c):
            seen["t"], seen["cond"] = t, c
            return jnp.zeros_like(x)

        ddpm.eps_loss(sched, eps_fn, x0, cond, key)
        return seen["t"], seen["cond"]

    cond = jnp.arange(3000.0).reshape(1000, 3)
    t, seen_cond = run(jnp.zeros((1000, 2)), cond, jax.random.PRNGKey(0))
    assert t.shape == (1000,)
    counts = np.bincount(np.asarray(t), minlength=N)
    assert len(counts) == N and np.all(counts > 150)  # uniform over {0, ..., N-1}
    np.testing.assert_array_equal(seen_cond, cond)


# -- the sampler --------------------------------------------------------------------------------
def _run_sampler(fn, cond, key, a_dim, max_action, clip=True):
    """ddpm.sample under jit, also returning every denoiser call's (x, t, ε) in call order."""
    sched = ddpm.make_schedule("vp", N)

    @jax.jit
    def run(cond, key):
        calls = []

        def eps_fn(x, t, c):
            out = fn(x, t, c)
            calls.append((x, t, out))
            return out

        out = ddpm.sample(sched, eps_fn, cond, key, a_dim, max_action, clip_denoised=clip)
        return out, calls

    out, calls = run(cond, key)
    calls = [
        (np.asarray(x, np.float64), np.asarray(t), np.asarray(e, np.float64)) for x, t, e in calls
    ]
    return sched, np.asarray(out, np.float64), calls


def _posterior_mean(sched, i, x, eps, max_action, clip):
    abar = float(sched.alphas_cumprod[i])
    x0 = np.sqrt(1 / abar) * x - np.sqrt(1 / abar - 1) * eps
    if clip:
        x0 = np.clip(x0, -max_action, max_action)
    return float(sched.posterior_mean_coef1[i]) * x0 + float(sched.posterior_mean_coef2[i]) * x


@pytest.mark.parametrize("clip", [True, False])
def test_sampler_chain_matches_posterior_and_has_no_final_noise(clip):
    max_action = 0.7
    batch, a_dim = 400, 3
    cond = jnp.asarray(np.linspace(-1, 1, batch)[:, None] * np.ones((1, 2)), jnp.float32)
    sched, out, calls = _run_sampler(
        lambda x, t, c: 0.5 * x + c[:, :1] + 0.1 * t[:, None],
        cond,
        jax.random.PRNGKey(3),
        a_dim,
        max_action,
        clip,
    )
    assert out.shape == (batch, a_dim)
    assert [int(c[1][0]) for c in calls] == list(range(N - 1, -1, -1))
    for _, t, _ in calls:
        assert t.shape == (batch,) and np.all(t == t[0])
    x_first = calls[0][0]
    assert abs(x_first.mean()) < 0.1 and abs(x_first.std() - 1.0) < 0.05  # x_N ~ N(0, I)

    zs = []
    clipped_any = False
    for step, (x, t, eps) in enumerate(calls):
        i = int(t[0])
        mu = _posterior_mean(sched, i, x, eps, max_action, clip)
        unclipped_mu = _posterior_mean(sched, i, x, eps, max_action, False)
        clipped_any |= not np.allclose(mu, unclipped_mu)
        if i > 0:
            z = (calls[step + 1][0] - mu) / float(sched.posterior_std[i])
            assert abs(z.std() - 1.0) < 0.08 and abs(z.mean()) < 0.08  # fresh N(0, I) noise
            zs.append(z)
        else:  # the last step adds no noise: x₀ is the clipped posterior mean exactly
            np.testing.assert_allclose(out, np.clip(mu, -max_action, max_action), atol=2e-6)
    assert clipped_any == clip  # the x̂₀ clip was exercised (and only when asked for)
    corr = np.corrcoef(np.stack([z.ravel() for z in zs]))
    assert np.all(np.abs(corr[~np.eye(len(zs), dtype=bool)]) < 0.1)  # independent draws


def test_sampler_clips_x0_and_output():
    max_action = 0.5
    cond = jnp.zeros((64, 1))
    # ε = −5 pushes x̂₀ = √(1/ᾱ)x + 5√(1/ᾱ − 1) far above the box at every step
    sched, out, calls = _run_sampler(
        lambda x, t, c: jnp.full_like(x, -5.0), cond, jax.random.PRNGKey(0), 2, max_action
    )
    x1, _, eps = calls[-1]
    abar0 = float(sched.alphas_cumprod[0])
    raw_x0 = np.sqrt(1 / abar0) * x1 - np.sqrt(1 / abar0 - 1) * eps
    assert np.all(raw_x0 > max_action)  # the unclipped x̂₀ would be outside the box
    expect = (
        float(sched.posterior_mean_coef1[0]) * max_action
        + float(sched.posterior_mean_coef2[0]) * x1
    )
    np.testing.assert_allclose(out, np.clip(expect, -max_action, max_action), atol=2e-6)
    assert np.all(np.abs(out) <= np.float32(max_action))

    _, unclipped, _ = _run_sampler(
        lambda x, t, c: jnp.full_like(x, -5.0), cond, jax.random.PRNGKey(0), 2, 100.0, False
    )
    assert unclipped.max() > 3 * max_action  # without clipping the chain leaves the box


def test_sampler_output_in_box_for_wild_denoiser():
    sched = ddpm.make_schedule("vp", N)
    cond = jnp.zeros((256, 1))
    out = jax.jit(
        lambda c, k: ddpm.sample(sched, lambda x, t, c: 40.0 * jnp.sin(7 * x), c, k, 4, 0.3)
    )(cond, jax.random.PRNGKey(5))
    assert out.shape == (256, 4)
    peak = np.abs(np.asarray(out)).max()
    assert peak <= np.float32(0.3)
    assert peak == np.float32(0.3)  # the box is actually reached


def test_sampler_gradient_reaches_every_step():
    sched = ddpm.make_schedule("vp", N)
    cond = jnp.ones((16, 1))
    a_dim = 2

    def loss(w):  # w[t] is used only by the denoiser call at step t
        def eps_fn(x, t, c):
            return jnp.tanh(w[t] * x + c)

        out = ddpm.sample(sched, eps_fn, cond, jax.random.PRNGKey(7), a_dim, max_action=50.0)
        return jnp.sum(out**2)

    w = jnp.full((N, a_dim), 0.3)
    g = np.asarray(jax.jit(jax.grad(loss))(w))
    assert np.all(np.abs(g) > 1e-6), g
    assert np.all(np.abs(g[N - 1]) > 1e-6)  # the first call (t = N−1) reaches the output

    # the gradient through the chain is the true derivative (central differences, float32)
    h = 1e-2
    loss_jit = jax.jit(loss)
    for j in range(a_dim):
        e = jnp.zeros_like(w).at[N - 1, j].set(h)
        fd = (loss_jit(w + e) - loss_jit(w - e)) / (2 * h)
        assert float(fd) == pytest.approx(float(g[N - 1, j]), rel=2e-2, abs=1e-4)


def test_sampler_gradient_zero_through_clipped_x0():
    sched = ddpm.make_schedule("vp", N)
    cond = jnp.zeros((8, 1))

    def loss(p):  # x̂₀ is far outside the box at every step, so ε's gradient is cut by the clip
        out = ddpm.sample(
            sched,
            lambda x, t, c: jnp.full_like(x, -50.0) * p,
            cond,
            jax.random.PRNGKey(0),
            2,
            max_action=1.0,
        )
        return jnp.sum(out)

    assert float(jax.jit(jax.grad(loss))(1.0)) == 0.0

    def loss_noclip(p):
        out = ddpm.sample(
            sched,
            lambda x, t, c: jnp.full_like(x, -0.1) * p,
            cond,
            jax.random.PRNGKey(0),
            2,
            max_action=100.0,
        )
        return jnp.sum(out)

    assert float(jax.jit(jax.grad(loss_noclip))(1.0)) != 0.0
