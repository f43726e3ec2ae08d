"""The networks of ALGORITHMS.md §1.1 (nets.py): Mish and its gradient, the sinusoidal time
embedding, the denoiser and the twin critic against hand-computed MLPs, PyTorch's default init.

Oracles are float64 numpy formulas from the spec and MLPs written out by hand.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl import nets

OBS, ACT, HID = 3, 2, 32


@pytest.fixture(scope="module")
def denoiser_params():
    return jax.jit(nets.denoiser_init, static_argnums=(1, 2, 3))(
        jax.random.PRNGKey(0), OBS, ACT, HID
    )


@pytest.fixture(scope="module")
def critic_params():
    return jax.jit(nets.critic_init, static_argnums=(1, 2, 3))(jax.random.PRNGKey(4), OBS, ACT, HID)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _mish64(x):
    return x * np.tanh(_softplus(x))


def _mish_grad64(x):
    sp = _softplus(x)
    sig = 0.5 * (1 + np.tanh(x / 2))
    return np.tanh(sp) + x * (1 - np.tanh(sp) ** 2) * sig


MISH_X = np.array(
    [
        -1000,
        -100,
        -30,
        -20.5,
        -10,
        -5,
        -1,
        -1e-3,
        0,
        1e-3,
        0.5,
        1,
        3,
        10,
        19.5,
        20.5,
        30,
        100,
        1000,
    ],
    np.float64,
)


def test_mish_matches_definition():
    got = np.asarray(jax.jit(nets.mish)(jnp.asarray(MISH_X, jnp.float32)), np.float64)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, _mish64(MISH_X), rtol=1e-5, atol=1e-6)
    grid = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(
        jax.jit(nets.mish)(jnp.asarray(grid, jnp.float32)), _mish64(grid), rtol=1e-5, atol=1e-6
    )


def test_mish_gradient():
    g = np.asarray(jax.jit(jax.vmap(jax.grad(nets.mish)))(jnp.asarray(MISH_X, jnp.float32)))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, _mish_grad64(MISH_X), rtol=1e-4, atol=1e-5)


def test_sinusoidal_frequencies():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    freqs = np.exp(-np.arange(8) * np.log(10000.0) / 7)
    assert freqs[0] == 1.0 and freqs[-1] == pytest.approx(1e-4)
    arg = t[:, None] * freqs
    expect = np.concatenate([np.sin(arg), np.cos(arg)], axis=1)
    got = jax.jit(nets.sinusoidal)(jnp.asarray(t, jnp.int32))
    assert got.shape == (4, 16)
    np.testing.assert_allclose(got, expect, atol=1e-6)


def _mlp64(layers, x):
    for i, layer in enumerate(layers):
        x = x @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(layers) - 1:
            x = _mish64(x)
    return x


def test_denoiser_matches_concatenated_mlp(denoiser_params):
    obs_dim, a_dim, hidden, batch = OBS, ACT, HID, 5
    p = denoiser_params
    shapes = [p["trunk"][f"l{i}"]["w"].shape for i in range(4)]
    assert shapes == [
        (a_dim + 16 + obs_dim, hidden),
        (hidden, hidden),
        (hidden, hidden),
        (hidden, a_dim),
    ]
    assert [p["time"][f"l{i}"]["w"].shape for i in range(2)] == [(16, 32), (32, 16)]

    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, a_dim))
    s = rng.normal(size=(batch, obs_dim))
    t = np.array([0, 1, 2, 3, 4])
    freqs = np.exp(-np.arange(8) * np.log(10000.0) / 7)
    sin_emb = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    temb = _mlp64([p["time"]["l0"], p["time"]["l1"]], sin_emb)
    expect = _mlp64([p["trunk"][f"l{i}"] for i in range(4)], np.concatenate([x, temb, s], axis=1))

    got = jax.jit(nets.denoiser_apply)(
        p, jnp.asarray(x, jnp.float32), jnp.asarray(t), jnp.asarray(s, jnp.float32)
    )
    assert got.shape == (batch, a_dim)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)

    # a scalar t shared by the batch equals a (B,) vector of that t (the chain's fast path)
    @jax.jit
    def both(p, xs, ss):
        feat = nets.denoiser_state_features(p, ss, a_dim)
        time_feat = nets.denoiser_time_features(p, jnp.arange(5), a_dim)
        shared = nets.denoiser_trunk(p, xs, feat + time_feat[3])
        return shared, nets.denoiser_apply(p, xs, jnp.full((batch,), 3), ss)

    shared, per_row = both(p, jnp.asarray(x, jnp.float32), jnp.asarray(s, jnp.float32))
    np.testing.assert_allclose(shared, per_row, rtol=1e-5, atol=1e-6)


def test_critic_two_heads_match_manual_mlp(critic_params):
    obs_dim, a_dim, batch = OBS, ACT, 6
    p = critic_params
    rng = np.random.default_rng(2)
    s = rng.normal(size=(batch, obs_dim))
    a = rng.uniform(-1, 1, size=(batch, a_dim))
    q = jax.jit(nets.critic_apply)(p, jnp.asarray(s, jnp.float32), jnp.asarray(a, jnp.float32))
    q = np.asarray(q)
    assert q.shape == (2, batch)
    for k in range(2):
        layers = [{"w": p[f"l{i}"]["w"][k], "b": p[f"l{i}"]["b"][k]} for i in range(4)]
        expect = _mlp64(layers, np.concatenate([s, a], axis=1))[:, 0]
        np.testing.assert_allclose(q[k], expect, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(q[0] - q[1]) > 1e-6)  # independently initialised heads


def test_pytorch_default_init_bounds(denoiser_params, critic_params):
    dp, cp = denoiser_params, critic_params
    layers = list(dp["time"].values()) + list(dp["trunk"].values()) + list(cp.values())
    for layer in layers:
        w, b = np.asarray(layer["w"]), np.asarray(layer["b"])
        bound = 1 / math.sqrt(w.shape[-2])
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > 0.75 * bound  # uniform over the whole range, not a smaller init
        assert abs(w.mean()) < 0.2 * bound
    # the two stacked critic heads are different draws
    assert not np.allclose(cp["l0"]["w"][0], cp["l0"]["w"][1])
