"""CVAE BC (agents/cvaebc.py, BCQ's VAE): KL on hand-made cases, the loss, acting from clipped
prior latents."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import (
    assert_registered,
    assert_trains,
)

from diffrl.agents import cvaebc
from diffrl.agents.api import Spec

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
B = 16
AGENT = cvaebc.AGENT  # `batch` and `trained` (tests/conftest.py) train it
CFG = cvaebc.Config(hidden=32)
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def test_registered_and_trains(trained):
    assert_registered(AGENT, "cvaebc", with_data=False, q_value=False)
    assert_trains(trained, ("encoder", "decoder"))


def test_cvae_kl_on_hand_made_cases():
    kl = cvaebc.kl_to_standard_normal
    assert float(kl(jnp.zeros((3, 4)), jnp.zeros((3, 4)))) == pytest.approx(0.0, abs=1e-7)
    # per element −½(1 + 2 log σ − μ² − σ²): μ = 1, σ = 1 → ½; μ = 0, σ = 1 → 0; mean ¼
    assert float(kl(jnp.array([[1.0, 0.0]]), jnp.zeros((1, 2)))) == pytest.approx(0.25)
    # μ = 0, σ = 2: −½(1 + 2 ln 2 − 4) = 1.5 − ln 2
    got = float(kl(jnp.zeros((1, 1)), jnp.full((1, 1), math.log(2.0))))
    assert got == pytest.approx(1.5 - math.log(2.0), rel=1e-6)


def test_cvae_loss_is_recon_plus_half_kl(trained):
    m = trained[2][1]
    expect = float(m["actor/recon_loss"]) + 0.5 * float(m["actor/kl_loss"])
    assert float(m["actor/bc_loss"]) == pytest.approx(expect, rel=1e-5)
    assert CFG.latent_dim(SPEC) == 2 * SPEC.action_dim
    assert cvaebc.Config().hidden == 750 and cvaebc.Config().lr == 1e-3


def test_cvae_act_decodes_clipped_prior_latents(trained, batch):
    cfg, state = CFG, trained[2][0]
    key = jax.random.PRNGKey(5)
    z = np.asarray(cvaebc.prior_latent(cfg, SPEC, key, 2000))
    assert z.shape == (2000, 4)
    assert np.all(np.abs(z) <= 0.5)
    assert np.mean(np.abs(z) == 0.5) > 0.5  # N(0, 1) lies beyond ±0.5 with probability 0.62
    obs = batch.observations
    a = cvaebc.sample(cfg, SPEC, state, obs, key)
    expect = cvaebc.decode(SPEC, state.decoder, obs, cvaebc.prior_latent(cfg, SPEC, key, B))
    np.testing.assert_array_equal(a, expect)
