"""Optimisation helpers (diffrl.optim): EMA and Polyak targets, clipped Adam steps."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from diffrl import optim


@pytest.mark.parametrize("warm_start", [False, True])
def test_ema_step(warm_start):
    ema = {"w": jnp.zeros(3)}
    online = {"w": jnp.ones(3)}

    def at(step, e=ema):
        out = optim.ema_step(e, online, jnp.int32(step), 0.9, 5, 10, warm_start)
        return np.asarray(out["w"])

    before = 1.0 if warm_start else 0.0  # clean: follow the online weights; reference: keep init
    for step in (0, 3, 5, 9):
        np.testing.assert_array_equal(at(step), before)
    np.testing.assert_allclose(at(10), 0.1)  # 0.9·ema + 0.1·online, from `start`, every 5
    np.testing.assert_allclose(at(15), 0.1)
    for step in (11, 12, 14, 16):
        np.testing.assert_array_equal(at(step), 0.0)  # between updates: unchanged
    np.testing.assert_allclose(at(20, {"w": jnp.full(3, 0.5)}), 0.55)


def test_polyak():
    out = optim.polyak({"a": jnp.array([2.0])}, {"a": jnp.array([4.0])}, 0.25)
    np.testing.assert_allclose(out["a"], [2.5])


def test_optimizer_step_clips_and_first_adam_step_is_lr_sign():
    params = {"w": jnp.array([1.0, 1.0, 1.0])}
    grads = {"w": jnp.array([300.0, -400.0, 0.0])}
    tx = optim.adam(1.0)
    new, _, gnorm = optim.optimizer_step(tx, grads, tx.init(params), params, jnp.float32(0.1))
    assert float(gnorm) == pytest.approx(500.0)  # the raw norm, before clipping
    np.testing.assert_allclose(new["w"], [0.9, 1.1, 1.0], rtol=1e-5)
    assert len(optim.adam(0.0).init(params)) == 1  # gn ≤ 0: no clipping stage
