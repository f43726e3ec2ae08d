"""IQL (agents/iql.py): expectile loss, clipped advantage weights, the actor gradient reaches only
the actor, the actor schedule and dropout."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import (
    assert_registered,
    assert_trains,
)

from diffrl.acting import policy_action
from diffrl.agents import iql
from diffrl.agents.api import ActionChoice, Spec

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
B = 16
AGENT = iql.AGENT  # `batch` and `trained` (tests/conftest.py) train it
CFG = iql.Config(hidden=32)
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def test_registered_and_trains(trained):
    assert_registered(AGENT, "iql", with_data=False, q_value=True)
    assert_trains(trained, ("actor", "critic", "critic_target", "value"))


def test_iql_expectile_loss_weights():
    tau = 0.7
    assert float(iql.expectile_loss(jnp.array([2.0]), tau)) == pytest.approx(0.7 * 4)
    assert float(iql.expectile_loss(jnp.array([-2.0]), tau)) == pytest.approx(0.3 * 4)
    assert float(iql.expectile_loss(jnp.array([2.0, -2.0]), tau)) == pytest.approx(2.0)
    # V below Q (u > 0) is pushed up harder than V above Q is pushed down
    g = jax.grad(lambda v: iql.expectile_loss(jnp.array([1.0, -1.0]) - v, tau))(jnp.zeros(2))
    np.testing.assert_allclose(g, [-0.7, 0.3], rtol=1e-6)


def test_iql_advantage_weights_clipped_at_100():
    q = jnp.array([0.0, 10.0, -1.0, 1.0])
    w = np.asarray(iql.advantage_weights(q, jnp.zeros(4), 3.0, 100.0))
    np.testing.assert_allclose(w, [1.0, 100.0, math.exp(-3.0), math.exp(3.0)], rtol=1e-6)
    assert iql.Config().max_weight == 100.0 and iql.Config().temperature == 3.0


def test_iql_actor_gradient_reaches_only_the_actor(trained, batch):
    cfg, state = CFG, trained[2][0]
    grads = jax.grad(
        lambda a, c, v: iql.actor_loss(cfg, SPEC, a, c, v, batch, jax.random.PRNGKey(0))[0],
        argnums=(0, 1, 2),
    )(state.actor, state.critic_target, state.value)
    assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(grads[1:]))
    assert all(np.any(np.asarray(g) != 0.0) for g in jax.tree.leaves(grads[0]))
    # the weighted NLL: weights from the target critic's min-Q and V on dataset actions
    loss, aux = iql.actor_loss(
        cfg, SPEC, state.actor, state.critic_target, state.value, batch, jax.random.PRNGKey(0)
    )
    q = iql.q_values(state.critic_target, batch.observations, batch.actions).min(axis=0)
    w = iql.advantage_weights(q, iql.v_value(state.value, batch.observations), 3.0, 100.0)
    mean, log_std = iql.nets.gaussian_actor_apply(state.actor, batch.observations, 0.5)
    logp = iql.nets.gaussian_log_prob(mean, log_std, batch.actions)
    assert float(loss) == pytest.approx(float(-(w * logp).mean()), rel=1e-5)
    assert float(aux["actor/bc_loss"]) == pytest.approx(float(-logp.mean()), rel=1e-5)


def test_iql_actor_schedule_and_dropout(batch, trained):
    sched = iql.Config(total_steps=1000).actor_schedule()
    assert float(sched(jnp.int32(0))) == pytest.approx(3e-4)
    assert float(sched(jnp.int32(500))) == pytest.approx(1.5e-4, rel=1e-5)
    flat = iql.Config(lr_decay=False).actor_schedule()
    assert float(flat(jnp.int32(10**6))) == pytest.approx(3e-4)
    state = trained[2][0]

    def loss(cfg, seed):
        args = (cfg, SPEC, state.actor, state.critic_target, state.value, batch)
        return float(iql.actor_loss(*args, jax.random.PRNGKey(seed))[0])

    dropped = dataclasses.replace(CFG, actor_dropout=0.5)
    assert loss(dropped, 0) != loss(dropped, 1)  # dropout in training
    assert loss(CFG, 0) == loss(CFG, 1)
    # acting is deterministic (the mean, no dropout) unless a sample is asked for
    deployed = policy_action(iql.AGENT, dropped, SPEC, iql.AGENT.default_choice)
    a = [deployed(state, batch.observations, jax.random.PRNGKey(i)) for i in (0, 1)]
    np.testing.assert_array_equal(a[0], a[1])
    ranked = policy_action(iql.AGENT, CFG, SPEC, ActionChoice("argmax", 4))
    assert ranked(state, batch.observations, jax.random.PRNGKey(0)).shape == (B, SPEC.action_dim)
