"""FQL (agents/fql.py): the losses on fixed inputs, where gradients must and must not flow, the
target critic's update in both modes, and the networks' shape (spec/OGBENCH.md §D)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl.agents import fql
from diffrl.agents.api import Batch, Spec

SPEC = Spec(obs_dim=3, action_dim=2, max_action=1.0)
CONFIG = fql.Config(hidden=8, layers=2, flow_steps=10)


@pytest.fixture(scope="module")
def state() -> fql.State:
    return fql.init(CONFIG, SPEC, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def batch() -> Batch:
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    return Batch(
        observations=jax.random.normal(k[0], (16, 3)),
        actions=jax.random.uniform(k[1], (16, 2), minval=-1, maxval=1),
        rewards=jax.random.normal(k[2], (16,)),
        next_observations=jax.random.normal(k[3], (16, 3)),
        not_done=jnp.array([1.0, 0.0] * 8),
    )


def test_networks_have_the_official_shape(state):
    critic, flow, onestep = (state.nets[k] for k in ("critic", "flow", "onestep"))
    assert [layer["w"].shape for layer in critic] == [(2, 5, 8), (2, 8, 8), (2, 8, 1)]
    assert "ln_scale" in critic[0] and "ln_scale" not in critic[-1]  # LayerNorm: hidden only
    assert [layer["w"].shape for layer in flow] == [(6, 8), (8, 8), (8, 2)]  # [s, x_t, t]
    assert [layer["w"].shape for layer in onestep] == [(5, 8), (8, 8), (8, 2)]  # [s, z]
    assert "ln_scale" not in flow[0] and not np.any(np.asarray(flow[0]["b"]))  # zero biases
    limit = np.sqrt(3.0 / ((6 + 8) / 2))  # variance scaling 1, fan_avg, uniform
    w = np.asarray(flow[0]["w"])
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.8 * limit


def test_euler_integration_of_a_constant_velocity_lands_at_z_plus_it():
    flow = fql.mlp_init(jax.random.PRNGKey(0), [3 + 2 + 1, 8, 2], False)
    flow = jax.tree.map(jnp.zeros_like, flow)
    flow[-1]["b"] = jnp.array([0.3, -0.5])  # v(s, x, t) = (0.3, −0.5) everywhere
    z = jnp.array([[0.1, 0.2], [0.9, -0.8]])
    out = fql.flow_actions(CONFIG, SPEC, flow, jnp.zeros((2, 3)), z)
    np.testing.assert_allclose(out, np.clip(np.asarray(z) + [0.3, -0.5], -1, 1), atol=1e-6)


def test_critic_loss_is_the_mean_over_members_and_batch_against_the_mean_target(state, batch):
    key = jax.random.PRNGKey(3)
    loss, metrics = fql.critic_loss(CONFIG, SPEC, state, state.nets["critic"], batch, key)
    _, sample_key = jax.random.split(key)
    next_a = fql.policy_actions(SPEC, state.nets["onestep"], batch.next_observations, sample_key)
    next_q = np.asarray(fql.critic_apply(state.target_critic, batch.next_observations, next_a))
    y = np.asarray(batch.rewards) + 0.99 * np.asarray(batch.not_done) * next_q.mean(axis=0)
    q = np.asarray(fql.critic_apply(state.nets["critic"], batch.observations, batch.actions))
    np.testing.assert_allclose(loss, np.mean((q - y[None]) ** 2), rtol=1e-5)
    np.testing.assert_allclose(metrics["critic/target_q"], y.mean(), rtol=1e-5)
    cfg_min = fql.Config(hidden=8, layers=2, q_agg="min")
    loss_min, _ = fql.critic_loss(cfg_min, SPEC, state, state.nets["critic"], batch, key)
    y_min = np.asarray(batch.rewards) + 0.99 * np.asarray(batch.not_done) * next_q.min(axis=0)
    np.testing.assert_allclose(loss_min, np.mean((q - y_min[None]) ** 2), rtol=1e-5)


def _actor_grads(config, state, batch):
    def loss(nets):
        return fql.actor_loss(config, SPEC, state, nets, batch, jax.random.PRNGKey(4))[0]

    return jax.jit(jax.grad(loss))(state.nets)  # one compilation, not one per eager op


def _norm(tree) -> float:
    return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_the_actor_loss_leaves_the_critic_and_the_distillation_leaves_the_flow(state, batch):
    grads = _actor_grads(CONFIG, state, batch)
    assert _norm(grads["critic"]) == 0.0  # the Q term reads a frozen critic
    assert _norm(grads["flow"]) > 0 and _norm(grads["onestep"]) > 0
    heavy = fql.Config(hidden=8, layers=2, alpha=1000.0)
    heavy_grads = _actor_grads(heavy, state, batch)
    # the flow's gradient is the BC loss's alone: α (the distillation weight) does not reach it
    np.testing.assert_allclose(
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads["flow"])]),
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(heavy_grads["flow"])]),
        rtol=1e-5, atol=1e-7,
    )  # fmt: skip
    assert _norm(heavy_grads["onestep"]) > 10 * _norm(grads["onestep"])


def test_the_critic_loss_reaches_only_the_critic(state, batch):
    def loss(nets):
        key = jax.random.PRNGKey(5)
        return fql.critic_loss(CONFIG, SPEC, state, nets["critic"], batch, key)[0]

    grads = jax.jit(jax.grad(loss))(state.nets)
    assert _norm(grads["critic"]) > 0
    assert _norm(grads["onestep"]) == 0.0 and _norm(grads["flow"]) == 0.0


def test_the_q_term_is_minus_the_mean_of_both_critics(state, batch):
    key = jax.random.PRNGKey(6)
    plain = fql.Config(hidden=8, layers=2, alpha=1.0)
    loss, m = fql.actor_loss(plain, SPEC, state, state.nets, batch, key)
    parts = m["actor/bc_flow_loss"] + m["actor/distill_loss"] + m["actor/q_loss"]
    np.testing.assert_allclose(loss, parts, rtol=1e-5)
    # the z the official code draws: key -> (key, x, t) -> (key, z)
    z_key = jax.random.split(jax.random.split(key, 3)[0])[1]
    z = jax.random.normal(z_key, batch.actions.shape)
    mu = jnp.clip(fql.onestep_action(state.nets["onestep"], batch.observations, z), -1, 1)
    q = np.asarray(fql.critic_apply(state.nets["critic"], batch.observations, mu)).mean(axis=0)
    np.testing.assert_allclose(m["actor/q_loss"], -q.mean(), rtol=1e-5)
    normed = fql.Config(hidden=8, layers=2, alpha=1.0, normalize_q_loss=True)
    _, n = fql.actor_loss(normed, SPEC, state, state.nets, batch, key)
    np.testing.assert_allclose(n["actor/q_loss"], -q.mean() / np.abs(q).mean(), rtol=1e-5)


@pytest.mark.parametrize("mode", ["reference", "clean"])
def test_the_target_critic_moves_toward_the_old_critic_in_reference_mode(state, batch, mode):
    config = fql.Config(hidden=8, layers=2, mode=mode, tau=0.1)
    new, _ = jax.jit(fql.update, static_argnums=(0, 1))(
        config, SPEC, state, batch, jax.random.PRNGKey(7)
    )
    toward = state.nets["critic"] if mode == "reference" else new.nets["critic"]
    expect = jax.tree.map(lambda t, c: 0.9 * t + 0.1 * c, state.target_critic, toward)
    for got, want in zip(jax.tree.leaves(new.target_critic), jax.tree.leaves(expect), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert int(new.step) == 1
    moved = jax.tree.map(lambda a, b: jnp.abs(a - b).sum(), new.nets, state.nets)
    assert all(float(x) > 0 for x in jax.tree.leaves(moved))  # one Adam step moved every net


def test_acting_samples_fresh_noise_and_stays_in_the_box(state):
    obs = jnp.zeros((64, 3))
    a = fql.sample(CONFIG, SPEC, state, obs, jax.random.PRNGKey(8))
    b = fql.sample(CONFIG, SPEC, state, obs, jax.random.PRNGKey(9))
    assert a.shape == (64, 2) and float(jnp.abs(a).max()) <= 1.0
    assert not np.allclose(a, b)  # stochastic: the official evaluation samples z


def _corners(tmp_path_factory, alpha: float) -> tuple[dict, np.ndarray]:
    from diffrl.bandits import suite

    out = tmp_path_factory.mktemp(f"fql-corners-{alpha}")
    variant = suite.Variant("fql", (("alpha", alpha),))
    record = suite.train_variant("corners", variant, out, 1500, seed=0, progress=False)
    return record, np.load(out / variant.label / "samples.npy")


def test_on_corners_the_q_term_pulls_to_the_best_mode_and_distillation_holds_the_data(
    tmp_path_factory,
):
    # the data put 25 % in each quadrant; the best mode (reward 5) is at (0.8, −0.8)
    _, pulled = _corners(tmp_path_factory, alpha=3.0)
    assert np.mean((pulled[:, 0] > 0) & (pulled[:, 1] < 0)) >= 0.95
    held, samples = _corners(tmp_path_factory, alpha=1000.0)
    assert held["support_rate"] >= 0.5 and min(held["mode_shares"]) >= 0.08
    assert np.mean((samples[:, 0] > 0) & (samples[:, 1] < 0)) <= 0.35
