"""Diffusion BC (agents/diffbc.py): Diffusion-QL's actor without the critic, its BC loss falls."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import (
    assert_registered,
    assert_trains,
    tree_close,
)

from diffrl.agents import diffbc, dql
from diffrl.agents.api import Spec
from diffrl.diffusion import policy as ddpm_policy
from diffrl.diffusion.policy import DDPMPolicy

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
AGENT = diffbc.AGENT  # `batch` and `trained` (tests/conftest.py) train it
CFG = diffbc.Config(hidden=32, n_steps=3)
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def test_registered_and_trains(trained):
    assert_registered(AGENT, "diffbc", with_data=False, q_value=False)
    assert_trains(trained, ("actor",))


def test_diffbc_is_dql_without_the_critic(trained, batch):
    dql_fields = {f.name for f in dataclasses.fields(dql.Config)}
    own = {f.name for f in dataclasses.fields(diffbc.Config)}
    assert own < dql_fields
    assert dql_fields - own == {
        "critic_lr",
        "eta",
        "gamma",
        "tau",
        "max_q_backup",
        "backup_samples",
        "ema_decay",
        "ema_every",
        "ema_start",
    }
    for name in own:  # same defaults as Diffusion-QL's actor
        assert getattr(diffbc.Config(), name) == getattr(dql.Config(), name), name
    assert {f.name for f in dataclasses.fields(diffbc.State)} == {"actor", "actor_opt", "step"}
    cfg = CFG
    key = jax.random.PRNGKey(0)
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    s_dql = dql.init(dql.Config(**shared, eta=0.0), SPEC, key)
    # same key, same denoiser (jitted vs eager init may round the last bit differently)
    assert tree_close(trained[0].actor, s_dql.actor, rtol=1e-6, atol=1e-7)
    # acting is DQL's plain reverse-chain sampler on the same denoiser
    state = trained[2][0]
    a = diffbc.sample(cfg, SPEC, state, batch.observations, key)
    expect = ddpm_policy.sample_actions(
        DDPMPolicy.of(cfg), state.actor, batch.observations, key, SPEC.action_dim, SPEC.max_action
    )
    np.testing.assert_allclose(a, expect, rtol=1e-6, atol=1e-7)


def test_diffbc_bc_loss_decreases(batch):
    cfg = dataclasses.replace(CFG, actor_lr=3e-3)
    policy = DDPMPolicy.of(cfg)
    state = diffbc.init(cfg, SPEC, jax.random.PRNGKey(0))
    probe = jax.random.PRNGKey(99)  # a fixed draw of (t, ε) to measure the loss with

    @jax.jit
    def many(state):
        def body(s, i):
            return diffbc.update(cfg, SPEC, s, batch, jax.random.fold_in(probe, i))[0], None

        return jax.lax.scan(body, state, jnp.arange(150))[0]

    before = float(
        ddpm_policy.bc_loss(policy, state.actor, batch.observations, batch.actions, probe)
    )
    after_state = many(state)
    after = float(
        ddpm_policy.bc_loss(policy, after_state.actor, batch.observations, batch.actions, probe)
    )
    assert after < 0.7 * before
    assert int(after_state.step) == 150
