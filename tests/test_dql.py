"""Diffusion-QL agent (ALGORITHMS.md §1.3–1.6, 1.8), the shared pieces in agents/common.py, the
optimiser helpers (diffrl.optim) and candidate ranking as Diffusion-QL deploys it (diffrl.acting).

The agent runs on a tiny spec (hidden 32, batch 8); each jitted function is compiled once per
module and shared through module-scoped fixtures.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import random_batch

from diffrl import acting, nets
from diffrl.agents import common, dql
from diffrl.agents.api import ActionChoice, Spec
from diffrl.diffusion import policy as ddpm_policy
from diffrl.diffusion.policy import DDPMPolicy
from diffrl.optim import LRSchedule

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
CFG = dql.Config(hidden=32)
B = 8


def _tree_allclose(a, b, **kw):
    return all(
        np.allclose(x, y, **kw) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _tree_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


# -- common: Bellman target, normalised Q loss -------------------------------
def test_bellman_target_max_over_samples_then_min_over_heads():
    # B = 2 states, n = 3 next actions each; rows of target_q are [state0 × 3, state1 × 3]
    head0 = [1.0, 5.0, 2.0, 0.0, 0.0, 7.0]  # per-state max: 5, 7
    head1 = [4.0, 3.0, 0.0, 9.0, 1.0, 1.0]  # per-state max: 4, 9
    target_q = jnp.array([head0, head1])
    y = common.bellman_target(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), target_q, 0.5, 3)
    np.testing.assert_allclose(y, [1.0 + 0.5 * 4.0, 2.0])  # min(5, 4) = 4; terminal: r only
    # min-then-max would give state 0: max(1, 3, 0) = 3, state 1 (not done): max(0, 0, 1) = 1
    y = common.bellman_target(jnp.array([0.0, 0.0]), jnp.array([1.0, 1.0]), target_q, 1.0, 3)
    np.testing.assert_allclose(y, [4.0, 7.0])


def test_bellman_target_single_sample_and_stop_gradient():
    q = jnp.array([[1.0, -2.0, 3.0], [0.5, -1.0, 4.0]])
    r, nd = jnp.array([0.1, 0.2, 0.3]), jnp.array([1.0, 1.0, 0.0])
    y = common.bellman_target(r, nd, q, 0.99)
    np.testing.assert_allclose(y, [0.1 + 0.99 * 0.5, 0.2 + 0.99 * -2.0, 0.3], rtol=1e-6)
    g = jax.grad(lambda q: common.bellman_target(r, nd, q, 0.99).sum())(q)
    assert np.all(np.asarray(g) == 0.0)


def test_normalized_q_loss_random_head_and_stop_gradient():
    q_pi = jnp.array([[1.0, 2.0, 3.0, 6.0], [-4.0, 5.0, -6.0, 1.0]])
    loss_head0 = -3.0 / 4.0  # −mean Q1 / mean |Q2|
    loss_head1 = 1.0 / 3.0  # −mean Q2 / mean |Q1| = −(−1) / 3
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    losses = np.asarray(jax.vmap(lambda k: common.normalized_q_loss(q_pi, k))(keys))
    is0 = np.isclose(losses, loss_head0)
    is1 = np.isclose(losses, loss_head1)
    assert np.all(is0 | is1)
    assert 0.4 < is0.mean() < 0.6  # the maximised head is a fair coin flip

    grads = np.asarray(jax.vmap(jax.grad(common.normalized_q_loss), (None, 0))(q_pi, keys[:40]))
    for g, loss in zip(grads, losses[:40], strict=True):
        i = 0 if np.isclose(loss, loss_head0) else 1
        norm = np.abs(np.asarray(q_pi[1 - i])).mean()
        np.testing.assert_allclose(g[i], -1.0 / (4 * norm), rtol=1e-6)  # maximised head
        assert np.all(g[1 - i] == 0.0)  # the normaliser head is behind a stop-gradient


# -- learning-rate schedules as Diffusion-QL steps them ------------------------------------------
def test_lr_schedule_reference_barely_moves():
    lr0 = 3e-4
    sched = dql.Config(mode="reference", total_steps=2_000_000).lr_schedule(lr0)
    assert sched.decay and sched.interval == 50_000 and sched.period == 2000 * 50_000
    lr = jax.jit(sched)
    assert float(lr(jnp.int32(0))) == pytest.approx(lr0, rel=1e-6)
    final = float(lr(jnp.int32(2_000_000)))
    assert final == pytest.approx(lr0 * 0.5 * (1 + math.cos(math.pi / 50)), rel=1e-6)
    assert final == pytest.approx(0.999 * lr0, rel=2e-4)  # "≈ 0.999·lr₀" (§1.6)
    # constant within an evaluation interval, changes only at its boundary
    for start in (0, 50_000, 1_000_000):
        inside = [float(lr(jnp.int32(start + d))) for d in (0, 1, 25_000, 49_999)]
        assert inside == [inside[0]] * 4
    assert float(lr(jnp.int32(1_050_000))) < float(lr(jnp.int32(1_049_999)))


def test_lr_schedule_clean_is_per_step_cosine():
    lr0 = 1e-3
    sched = dql.Config(mode="clean", total_steps=1000).lr_schedule(lr0)
    assert sched.interval == 1 and sched.period == 1000
    lr = jax.jit(sched)
    assert float(lr(jnp.int32(500))) == pytest.approx(lr0 / 2, rel=1e-5)
    assert float(lr(jnp.int32(250))) == pytest.approx(lr0 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert float(lr(jnp.int32(1000))) == pytest.approx(0.0, abs=1e-12)
    assert float(lr(jnp.int32(1500))) == pytest.approx(0.0, abs=1e-12)  # held at 0 afterwards
    assert float(lr(jnp.int32(1))) < float(lr(jnp.int32(0)))  # moves every step
    flat = dql.Config(mode="clean", lr_decay=False).lr_schedule(lr0)
    assert float(flat(jnp.int32(10**6))) == pytest.approx(lr0)
    assert float(LRSchedule(lr0)(jnp.int32(7))) == pytest.approx(lr0)


# -- the agent ------------------------------------------------------------------------------------
def test_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="mode"):
        dql.Config(mode="fast")
    with pytest.raises(ValueError, match="schedule"):
        dql.Config(beta_schedule="sigmoid")
    with pytest.raises(ValueError, match="greater than 0"):
        dql.Config(actor_lr=-1.0)


@pytest.fixture(scope="module")
def state0():
    return jax.jit(dql.init, static_argnums=(0, 1))(CFG, SPEC, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def batch():
    return random_batch(SPEC, 1, B)


@jax.jit
def _update_eta(state, batch, key, eta):
    """dql.update's steps with η traced, so that one compilation serves every η (a Config
    holds validated numbers, not tracers)."""
    k_critic, k_actor = jax.random.split(key)
    state, m_critic = dql.update_critic(CFG, SPEC, state, batch, k_critic)
    state, m_actor = dql.update_actor(CFG, SPEC, state, batch, k_actor, 1.0, eta)
    return dql.finish_step(CFG, state), {**m_critic, **m_actor}


@pytest.fixture(scope="module")
def updated(state0, batch):
    update = jax.jit(dql.update, static_argnums=(0, 1))
    return update(CFG, SPEC, state0, batch, jax.random.PRNGKey(2))


def test_init_shapes(state0):
    a, s, h = SPEC.action_dim, SPEC.obs_dim, CFG.hidden
    assert state0.actor["trunk"]["l0"]["w"].shape == (a + nets.TIME_DIM + s, h)
    assert state0.actor["trunk"]["l3"]["w"].shape == (h, a)
    assert state0.critic["l0"]["w"].shape == (2, s + a, h)
    assert state0.critic["l3"]["w"].shape == (2, h, 1)
    assert _tree_equal(state0.ema_actor, state0.actor)
    assert _tree_equal(state0.critic_target, state0.critic)
    assert int(state0.step) == 0


def test_update_changes_actor_and_critic_and_polyaks_target(state0, updated):
    new, metrics = updated
    assert int(new.step) == 1
    assert jax.tree.structure(new) == jax.tree.structure(state0)
    for old_leaf, new_leaf in zip(
        jax.tree.leaves(state0.actor), jax.tree.leaves(new.actor), strict=True
    ):
        assert new_leaf.shape == old_leaf.shape and not np.array_equal(new_leaf, old_leaf)
    for old_leaf, new_leaf in zip(
        jax.tree.leaves(state0.critic), jax.tree.leaves(new.critic), strict=True
    ):
        assert not np.array_equal(new_leaf, old_leaf)
    # target ← (1 − τ) target + τ critic_new
    expect = jax.tree.map(
        lambda t, c: (
            (1 - CFG.tau) * np.asarray(t, np.float64) + CFG.tau * np.asarray(c, np.float64)
        ),
        state0.critic_target,
        new.critic,
    )
    assert _tree_allclose(new.critic_target, expect, rtol=1e-6, atol=1e-8)
    assert not _tree_allclose(new.critic_target, state0.critic_target, rtol=0, atol=1e-7)
    # reference mode: the EMA actor stays at the initial weights before step 1000
    assert _tree_equal(new.ema_actor, state0.ema_actor)

    expected_keys = {
        "critic/loss",
        "critic/q_data",
        "critic/target_q",
        "critic/grad_norm",
        "actor/loss",
        "actor/grad_norm",
        "actor/lr",
        "actor/bc_loss",
        "actor/q_loss",
        "actor/q_policy",
    }
    assert expected_keys <= set(metrics)
    for k in expected_keys:
        assert np.isfinite(float(metrics[k])), k
    assert float(metrics["actor/lr"]) == pytest.approx(CFG.actor_lr)
    assert float(metrics["actor/loss"]) == pytest.approx(
        float(metrics["actor/bc_loss"]) + CFG.eta * float(metrics["actor/q_loss"]), rel=1e-5
    )


def test_update_is_deterministic_in_key(state0, batch, updated):
    # dql.update itself and its three steps with η traced: the same key, the same state
    again = _update_eta(state0, batch, jax.random.PRNGKey(2), CFG.eta)
    assert _tree_equal(again[0], updated[0])
    other = _update_eta(state0, batch, jax.random.PRNGKey(9), CFG.eta)
    assert not _tree_equal(other[0].actor, updated[0].actor)


def test_actor_update_includes_q_term(state0, batch, updated):
    with_q, m1 = updated
    bc_only, m0 = _update_eta(state0, batch, jax.random.PRNGKey(2), 0.0)
    # the critic step comes first and does not depend on η
    assert _tree_equal(with_q.critic, bc_only.critic)
    assert float(m1["critic/loss"]) == float(m0["critic/loss"])
    assert float(m1["actor/bc_loss"]) == float(m0["actor/bc_loss"])  # same key, same draws
    assert float(m1["actor/q_loss"]) == float(m0["actor/q_loss"]) != 0.0
    assert float(m0["actor/loss"]) == pytest.approx(float(m0["actor/bc_loss"]))
    assert float(m1["actor/loss"]) == pytest.approx(
        float(m0["actor/loss"]) + float(m1["actor/q_loss"])
    )
    assert float(m1["actor/grad_norm"]) != pytest.approx(float(m0["actor/grad_norm"]), rel=1e-4)
    diffs = [
        float(np.abs(np.asarray(a) - np.asarray(b)).max())
        for a, b in zip(jax.tree.leaves(with_q.actor), jax.tree.leaves(bc_only.actor), strict=True)
    ]
    assert max(diffs) > CFG.actor_lr  # the Q term changes the actor's step


def test_critic_loss_is_sum_of_head_mses(state0, batch):
    y = np.linspace(-1, 1, B, dtype=np.float32)  # host numbers: approx reads numpy, not jax
    loss, q = dql.critic_loss(state0.critic, batch, jnp.asarray(y))
    q_np = np.asarray(nets.critic_apply(state0.critic, batch.observations, batch.actions))
    np.testing.assert_allclose(q, q_np, rtol=1e-6)
    expect = ((q_np[0] - y) ** 2).mean() + ((q_np[1] - y) ** 2).mean()
    assert float(loss) == pytest.approx(expect, rel=1e-5)


@pytest.fixture(scope="module")
def state_mixed(state0):
    """state0 with an EMA actor and a critic target that differ from the online networks."""
    return state0.replace(
        ema_actor=jax.tree.map(lambda x: np.asarray(x) * np.float32(0.9), state0.actor),
        critic_target=jax.tree.map(lambda x: np.asarray(x) * np.float32(1.3), state0.critic),
    )


@pytest.mark.parametrize("max_q", [True, False])
def test_critic_target_samples(state_mixed, batch, monkeypatch, max_q):
    cfg = dql.Config(hidden=32, max_q_backup=max_q)
    n = 10 if max_q else 1
    seen = {}
    real_critic, real_bellman = nets.critic_apply, common.bellman_target

    def spy_critic(p, obs, action):
        seen["obs"], seen["action"] = obs, action
        out = real_critic(p, obs, action)
        seen["q"] = out
        return out

    def spy_bellman(rewards, not_done, target_q, gamma, n_samples=1):
        seen["n_samples"] = n_samples
        return real_bellman(rewards, not_done, target_q, gamma, n_samples)

    monkeypatch.setattr(nets, "critic_apply", spy_critic)
    monkeypatch.setattr(common, "bellman_target", spy_bellman)

    @jax.jit
    def run(state, batch, key):
        y = dql.critic_targets(cfg, SPEC, state, batch, key)
        q_target = real_critic(state.critic_target, seen["obs"], seen["action"])
        return y, seen["obs"], seen["action"], seen["q"], q_target

    key = jax.random.PRNGKey(4)
    y, obs, action, q, q_target = (np.asarray(v) for v in run(state_mixed, batch, key))
    assert seen["n_samples"] == n
    assert obs.shape == (B * n, SPEC.obs_dim) and action.shape == (B * n, SPEC.action_dim)
    assert q.shape == (2, B * n)
    np.testing.assert_allclose(q, q_target, rtol=1e-6)  # scored by the target critic
    assert np.all(np.abs(action) <= np.float32(SPEC.max_action))
    nd, r = np.asarray(batch.not_done), np.asarray(batch.rewards)
    for b in range(B):
        rows = slice(b * n, (b + 1) * n)
        np.testing.assert_array_equal(
            obs[rows], np.broadcast_to(batch.next_observations[b], (n, SPEC.obs_dim))
        )
        best = min(q[0, rows].max(), q[1, rows].max())
        want = float(r[b] + cfg.gamma * nd[b] * best)
        assert float(y[b]) == pytest.approx(want, rel=1e-5, abs=1e-6)
    if max_q:
        assert len({tuple(a) for a in action[:n].round(6)}) >= n - 3  # fresh EMA samples

    # next actions come from the EMA actor: the online actor does not matter, the EMA one does
    other_actor = state_mixed.replace(
        actor=jax.tree.map(lambda x: np.asarray(x) - np.float32(0.1), state_mixed.actor)
    )
    np.testing.assert_array_equal(run(other_actor, batch, key)[0], y)
    other_ema = state_mixed.replace(ema_actor=state_mixed.actor)
    assert not np.allclose(run(other_ema, batch, key)[2], action)


def test_finish_step_ema_schedule(state0):
    shifted = state0.replace(actor=jax.tree.map(lambda x: x + 1.0, state0.actor))
    # clean mode: before ema_start the EMA copy follows the online actor
    clean = dql.finish_step(dql.Config(hidden=32, mode="clean"), shifted)
    assert _tree_equal(clean.ema_actor, shifted.actor)
    # reference mode at step 1000 (a multiple of ema_every): ema ← 0.995 ema + 0.005 actor
    ref = dql.finish_step(CFG, shifted.replace(step=jnp.int32(1000)))
    expect = jax.tree.map(lambda e, a: 0.995 * e + 0.005 * a, state0.ema_actor, shifted.actor)
    assert _tree_allclose(ref.ema_actor, expect, rtol=1e-6)
    assert int(ref.step) == 1001
    ref = dql.finish_step(CFG, shifted.replace(step=jnp.int32(1001)))
    assert _tree_equal(ref.ema_actor, state0.ema_actor)


@pytest.fixture(scope="module")
def acted(state_mixed):
    """act() with each selection rule, in one compilation; argmax's candidates are captured."""
    seen = {}
    real = acting.select_candidates

    def spy(q, actions, how, key):
        out = real(q, actions, how, key)
        seen[how] = (q, actions)
        return out

    @jax.jit
    def run(state, obs, key):
        out = {
            how: acting.policy_action(dql.AGENT, CFG, SPEC, ActionChoice(how, 6))(state, obs, key)
            for how in ("none", "softmax", "argmax")
        }
        policy, a_dim, a_max = DDPMPolicy.of(CFG), SPEC.action_dim, SPEC.max_action
        out["online"] = ddpm_policy.sample_actions(policy, state.actor, obs, key, a_dim, a_max)
        out["ema"] = ddpm_policy.sample_actions(policy, state.ema_actor, obs, key, a_dim, a_max)
        return out, seen["argmax"]

    obs = jnp.asarray(np.random.default_rng(5).normal(size=(16, SPEC.obs_dim)) * 3, jnp.float32)
    mp = pytest.MonkeyPatch()
    mp.setattr(acting, "select_candidates", spy)
    try:
        out, (q, cands) = run(state_mixed, obs, jax.random.PRNGKey(6))
    finally:
        mp.undo()
    assert set(seen) == {"softmax", "argmax"}  # "none" samples directly
    return obs, out, np.asarray(q), np.asarray(cands)


@pytest.mark.parametrize("how", ["none", "softmax", "argmax"])
def test_act_shapes_and_box(acted, how):
    a = np.asarray(acted[1][how])
    assert a.shape == (16, SPEC.action_dim)
    assert np.all(np.abs(a) <= np.float32(SPEC.max_action))
    assert np.isfinite(a).all()
    assert np.abs(a).max() > 0.1  # not collapsed to zero


def test_act_none_samples_the_online_actor(acted):
    out = acted[1]
    np.testing.assert_array_equal(out["none"], out["online"])  # evaluation uses the online actor
    assert not np.allclose(out["none"], out["ema"])


def test_act_argmax_picks_best_target_q_candidate(state_mixed, acted):
    obs, out, q, cands = acted
    k = 6
    assert q.shape == (16, k) and cands.shape == (16, k, SPEC.action_dim)
    # the candidates are scored by the target critic's min over heads, on their own state
    rep = np.repeat(np.asarray(obs), k, axis=0)
    q_heads = nets.critic_apply(state_mixed.critic_target, rep, cands.reshape(16 * k, -1))
    np.testing.assert_allclose(q, np.asarray(q_heads).min(axis=0).reshape(16, k), rtol=1e-5)
    np.testing.assert_array_equal(out["argmax"], cands[np.arange(16), q.argmax(axis=1)])
    assert len({tuple(c) for c in cands[0].round(6)}) > 1  # distinct candidates per state
