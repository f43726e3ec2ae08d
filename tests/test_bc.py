"""Gaussian BC (agents/bc.py): training moves the actor, the NLL is the diagonal Gaussian's and
falls on a fixed batch, the mean action is deterministic."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest
from runhelpers import (
    assert_registered,
    assert_trains,
)

from diffrl.acting import policy_action
from diffrl.agents import bc
from diffrl.agents.api import ActionChoice, Spec

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
AGENT = bc.AGENT  # `batch` and `trained` (tests/conftest.py) train it
CFG = bc.Config(hidden=32)
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def test_registered_and_trains(trained):
    assert_registered(AGENT, "bc", with_data=False, q_value=False)
    assert_trains(trained, ("actor",))


def test_bc_nll_decreases_on_a_fixed_batch(batch):
    cfg = dataclasses.replace(CFG, lr=3e-3)
    state = bc.init(cfg, SPEC, jax.random.PRNGKey(0))

    @jax.jit
    def many(state):
        def body(s, _):
            s, m = bc.update(cfg, SPEC, s, batch, jax.random.PRNGKey(0))
            return s, m["actor/bc_loss"]

        return jax.lax.scan(body, state, None, length=200)

    state, losses = many(state)
    losses = np.asarray(losses)
    assert losses[-1] < losses[0] - 1.0  # the likelihood of the batch rises a lot
    nll, _ = bc.nll(SPEC, state.actor, batch.observations, batch.actions)
    mean, log_std = (
        np.asarray(x)
        for x in bc.nets.gaussian_actor_apply(state.actor, batch.observations, SPEC.max_action)
    )
    # the NLL is the diagonal Gaussian's, summed over dimensions and averaged over the batch
    z = (np.asarray(batch.actions) - mean) / np.exp(log_std)
    expect = np.mean(np.sum(0.5 * z**2 + log_std + 0.5 * math.log(2 * math.pi), axis=-1))
    assert float(nll) == pytest.approx(expect, rel=1e-4)


def test_bc_policy_output_mean_is_deterministic(trained, batch):
    state = trained[2][0]
    mean = policy_action(bc.AGENT, CFG, SPEC, ActionChoice(policy_output="mean"))
    a1 = mean(state, batch.observations, jax.random.PRNGKey(0))
    a2 = mean(state, batch.observations, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a1, a2)
    s1 = bc.sample(CFG, SPEC, state, batch.observations, jax.random.PRNGKey(0))
    assert not np.allclose(s1, a1)
    with pytest.raises(ValueError, match="'sample' or 'mean'"):
        ActionChoice(policy_output="mode")
