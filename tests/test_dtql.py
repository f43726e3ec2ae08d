"""DTQL: networks, losses, pretraining phase, acting, presets, CLI run and exact resume (§2)."""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import crash_and_resume, records_without_timing, tiny_bandit_run

from diffrl import launch, nets
from diffrl.acting import policy_action
from diffrl.agents import dtql, dtql_nets
from diffrl.agents.api import ActionChoice, Batch, Spec
from diffrl.cli import main
from diffrl.run import RunConfig, split_settings
from diffrl.runlog import read_records

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

# the bandit data set's sizes, so that the end-to-end runs reuse the compiled init ops
SPEC = Spec(obs_dim=2, action_dim=2, max_action=2.0)
S, A = SPEC.obs_dim, SPEC.action_dim
CFG = dtql.Config(hidden=16, pretrain_steps=3, total_steps=20)


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def batch() -> Batch:
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    return Batch(
        observations=jax.random.normal(k[0], (32, SPEC.obs_dim)),
        actions=jax.random.uniform(k[1], (32, SPEC.action_dim), minval=-1.9, maxval=1.9),
        rewards=jax.random.normal(k[2], (32,)),
        next_observations=jax.random.normal(k[3], (32, SPEC.obs_dim)),
        not_done=jnp.ones(32).at[0].set(0.0),
    )


@pytest.fixture(scope="module")
def state0():
    return dtql.init(CFG, SPEC, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def update_fn():
    return jax.jit(lambda s, b, k: dtql.update(CFG, SPEC, s, b, k))


# -- networks ------------------------------------------------------------------------------------
def test_reference_score_net_composes_its_first_two_layers_clean_does_not():
    p = dtql_nets.score_net_init(jax.random.PRNGKey(1), S, A, hidden=16)
    x, obs = jax.random.normal(jax.random.PRNGKey(2), (8, A)), jnp.ones((8, S))
    c_noise = jnp.linspace(-1.5, 1.0, 8)[:, None]
    apply = jax.jit(dtql_nets.score_net_apply, static_argnums=4)
    ref = apply(p, x, obs, c_noise, True)
    clean = apply(p, x, obs, c_noise, False)
    assert ref.shape == (8, A) and not np.allclose(ref, clean, atol=1e-4)
    # reference: l1∘l0 is one linear map, so folding it into l0 (l1 = identity) changes nothing
    l0, l1 = p["trunk"]["l0"], p["trunk"]["l1"]
    folded = jax.tree.map(lambda v: v, p)
    folded["trunk"]["l0"] = {"w": l0["w"] @ l1["w"], "b": l0["b"] @ l1["w"] + l1["b"]}
    folded["trunk"]["l1"] = {"w": jnp.eye(16), "b": jnp.zeros(16)}
    np.testing.assert_allclose(apply(folded, x, obs, c_noise, True), ref, rtol=1e-4, atol=1e-5)
    assert not np.allclose(apply(folded, x, obs, c_noise, False), clean, atol=1e-4)


def test_agent_mode_selects_the_score_net_variant(batch, state0):
    state = state0
    key = jax.random.PRNGKey(5)
    args = (state.behaviour, batch.observations, batch.actions, key)
    ref = jax.jit(functools.partial(dtql.edm_loss, CFG, SPEC))(*args)
    clean_cfg = dataclasses.replace(CFG, mode="clean")
    clean = jax.jit(functools.partial(dtql.edm_loss, clean_cfg, SPEC))(*args)
    assert float(ref) != float(clean)


def test_policy_log_std_is_clamped_and_actions_stay_in_the_box():
    p = dtql_nets.gaussian_policy_init(jax.random.PRNGKey(0), S, A, hidden=16)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, S))
    for shift, bound in ((50.0, nets.LOG_STD_MAX), (-50.0, nets.LOG_STD_MIN)):
        q = jax.tree.map(lambda v: v, p)
        q["l3"] = {"w": p["l3"]["w"], "b": p["l3"]["b"].at[A:].set(shift)}
        _, log_std = dtql_nets.gaussian_policy_apply(q, obs)
        np.testing.assert_array_equal(log_std, bound)
        a = dtql.policy_sample(SPEC, q, obs, jax.random.PRNGKey(2))
        assert float(jnp.abs(a).max()) <= SPEC.max_action
    # orthogonal weights, zero biases
    w = np.asarray(p["l1"]["w"])
    np.testing.assert_allclose(w.T @ w, np.eye(16), atol=1e-5)
    assert all(float(jnp.abs(layer["b"]).max()) == 0.0 for layer in p.values())


def test_dataset_log_likelihood_is_the_gaussian_of_artanh_without_jacobian(batch):
    actor = dtql_nets.gaussian_policy_init(jax.random.PRNGKey(3), S, A, hidden=16)
    obs, a = batch.observations, batch.actions
    mean, log_std = (np.asarray(v, np.float64) for v in dtql_nets.gaussian_policy_apply(actor, obs))
    z = np.arctanh(np.asarray(a, np.float64) / (SPEC.max_action + 1e-3))
    std = np.exp(log_std)
    expected = (-0.5 * ((z - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    got = dtql.dataset_log_likelihood(SPEC, actor, obs, a)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_layer_norm_q_and_v_shapes(state0):
    critic = state0.critic
    obs, a = jnp.ones((7, S)), jnp.zeros((7, A))
    assert dtql_nets.iql_q_apply(critic, obs, a).shape == (2, 7)
    assert dtql_nets.iql_v_apply(critic, obs).shape == (7,)
    h = jax.random.normal(jax.random.PRNGKey(1), (4, 16)) * 3 + 1
    normed = dtql_nets.layer_norm(h, jnp.ones(16), jnp.zeros(16))
    np.testing.assert_allclose(normed.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(-1), 1, atol=1e-3)


# -- critic -------------------------------------------------------------------------------------
def test_expectile_loss_weights_are_asymmetric():
    assert float(dtql.expectile_loss(jnp.array([1.0]), 0.7)) == pytest.approx(0.7)
    assert float(dtql.expectile_loss(jnp.array([-1.0]), 0.7)) == pytest.approx(0.3)
    assert float(dtql.expectile_loss(jnp.array([2.0, -2.0]), 0.9)) == pytest.approx(
        (0.9 * 4 + 0.1 * 4) / 2
    )


def test_td_target_uses_online_v_of_next_state_without_gradient(batch, state0):
    critic = state0.critic
    _, aux = jax.jit(functools.partial(dtql.critic_loss, CFG))(critic, batch)
    v_next = dtql_nets.iql_v_apply(critic, batch.next_observations)
    y = batch.rewards + CFG.gamma * batch.not_done * v_next
    q = dtql_nets.iql_q_apply(critic, batch.observations, batch.actions)
    np.testing.assert_allclose(aux["critic/td_loss"], ((q - y) ** 2).mean(1).sum(), rtol=1e-5)

    # V learns only from the expectile loss; Q heads are not trained by it
    @jax.jit
    def grads(c):
        def part(name):
            return jax.grad(lambda c: dtql.critic_loss(CFG, c, batch)[1][name])(c)

        return part("critic/td_loss"), part("value/loss")

    g_q, g_v = grads(critic)
    assert all(float(jnp.abs(v).max()) == 0.0 for v in jax.tree.leaves(g_q["v"]))
    assert all(float(jnp.abs(v).max()) == 0.0 for v in jax.tree.leaves(g_v["q"]))


# -- the update -----------------------------------------------------------------------------------
def test_trust_region_step_leaves_the_behaviour_model_unchanged(batch, state0, update_fn):
    # the same update from the same state and key, once as the last pretraining step (critic + BC
    # only) and once as the first main step (critic + BC + policy): the policy's trust-region
    # step must leave φ and its optimiser exactly where the BC step put them
    key = jax.random.PRNGKey(1)
    main_step = jnp.asarray(CFG.pretrain_steps, jnp.int32)
    pre, _ = update_fn(state0.replace(step=main_step - 1), batch, key)
    post, m = update_fn(state0.replace(step=main_step), batch, key)
    for part in ("behaviour", "behaviour_opt", "critic", "critic_opt"):
        assert leaves_equal(getattr(post, part), getattr(pre, part)), part
    assert not leaves_equal(post.actor, pre.actor)
    assert float(m["actor/tr_loss"]) > 0 and np.isfinite(float(m["actor/grad_norm"]))


def test_pretraining_leaves_the_policy_alone_then_the_policy_trains(batch, state0, update_fn):
    state = start = state0
    for i in range(CFG.pretrain_steps):
        state, m = update_fn(state, batch, jax.random.PRNGKey(i))
        assert np.isnan(float(m["actor/loss"])) and float(m["train/pretraining"]) == 1.0
        assert np.isfinite(float(m["behaviour/bc_loss"])) and np.isfinite(float(m["critic/loss"]))
    assert leaves_equal(state.actor, start.actor) and leaves_equal(state.actor_opt, start.actor_opt)
    assert leaves_equal(state.critic_target, start.critic_target)  # no Polyak in pretraining
    assert not leaves_equal(state.behaviour, start.behaviour)
    assert not leaves_equal(state.critic, start.critic)
    after, m = update_fn(state, batch, jax.random.PRNGKey(99))
    assert float(m["train/pretraining"]) == 0.0 and np.isfinite(float(m["actor/loss"]))
    assert not leaves_equal(after.actor, state.actor)
    assert not leaves_equal(after.critic_target, state.critic_target)
    assert int(after.step) == CFG.pretrain_steps + 1


def test_nll_term_only_with_a_weight(batch, state0):
    state = state0
    key = jax.random.PRNGKey(1)
    _, terms = dtql.policy_loss(CFG, SPEC, state.actor, state, batch, key)
    assert "actor/nll_loss" not in terms
    cfg = dataclasses.replace(CFG, nll_weight=1.0)
    loss, terms = dtql.policy_loss(cfg, SPEC, state.actor, state, batch, key)
    base = CFG.alpha * terms["actor/tr_loss"] - terms["actor/q_policy"]
    np.testing.assert_allclose(loss, base + terms["actor/nll_loss"], rtol=1e-5)


def test_learning_rate_constant_in_pretraining_then_per_step_cosine():
    cfg = dataclasses.replace(CFG, lr_decay=True, pretrain_steps=10, total_steps=110)
    assert float(cfg.lr_at(1.0, jnp.asarray(5))) == 1.0
    assert float(cfg.lr_at(1.0, jnp.asarray(10))) == 1.0
    assert float(cfg.lr_at(1.0, jnp.asarray(60))) == pytest.approx(0.5, abs=1e-6)
    assert float(cfg.lr_at(1.0, jnp.asarray(110))) == pytest.approx(0.0, abs=1e-6)
    assert float(CFG.lr_at(1.0, jnp.asarray(15))) == 1.0  # lr_decay off


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="pretrain_steps"):
        dtql.Config(pretrain_steps=100, total_steps=100)
    with pytest.raises(ValueError, match="expectile"):
        dtql.Config(expectile=1.0)


# -- acting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "output, selection, candidates",
    [
        ("mean", "none", 1),
        ("sample", "none", 1),
        ("sample", "softmax", 8),
        ("sample", "argmax", 16),
    ],
)
def test_act_shapes_and_bounds(batch, state0, output, selection, candidates):
    choice = ActionChoice(selection, candidates, output)
    state = dtql.policy_state(state0, choice.ranked)  # unranked: no target critic either
    obs = batch.observations[:6] * 10  # large inputs push the policy to the box edges
    act = policy_action(dtql.AGENT, CFG, SPEC, choice)
    a1 = act(state, obs, jax.random.PRNGKey(1))
    a2 = act(state, obs, jax.random.PRNGKey(2))
    assert a1.shape == (6, A) and float(jnp.abs(a1).max()) <= SPEC.max_action
    assert np.array_equal(a1, a2) == (output == "mean")


def test_argmax_candidate_has_the_best_target_q(batch, state0):
    state = state0
    obs = batch.observations[:4]

    @jax.jit
    def best_and_plain_q(state):
        a = policy_action(dtql.AGENT, CFG, SPEC, ActionChoice("argmax", 64))(
            state, obs, jax.random.PRNGKey(3)
        )
        plain = dtql.sample(CFG, SPEC, state, obs, jax.random.PRNGKey(4))
        q = functools.partial(dtql_nets.iql_q_apply, state.critic_target, obs)
        return q(a).min(0), q(plain).min(0)

    q_best, q_sample = best_and_plain_q(state)
    assert bool(jnp.all(q_best >= q_sample - 1e-6))


# -- presets --------------------------------------------------------------------------------------
# -- end to end -----------------------------------------------------------------------------------
TINY_AGENT = {"hidden": 16, "pretrain_steps": 15, "selection": "softmax", "candidates": 8}


def _tiny_run_config() -> RunConfig:
    """The run the CLI fixture starts, with TINY_AGENT split into agent and run settings."""
    run, agent = split_settings(TINY_AGENT)
    return tiny_bandit_run("dtql", agent, **run)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The uninterrupted run, started from the command line with _tiny_run_config's settings."""
    out = tmp_path_factory.mktemp("dtql") / "full"
    sets = [arg for k, v in TINY_AGENT.items() for arg in ("--set", f"{k}={v}")]
    code = main(
        [
            "train",
            "--algo",
            "dtql",
            "--dataset",
            "bandit:corners",
            "--steps",
            "40",
            "--eval-every",
            "20",
            "--batch-size",
            "32",
            "--steps-per-call",
            "10",
            "--out",
            str(out),
            "--quiet",
            *sets,
        ]
    )
    assert code == 0
    return out


def test_cli_short_run_writes_a_summary(cli_run):
    summary = json.loads((cli_run / "summary.json").read_text())
    for rule in ("final", "best", "offline_selected"):
        assert summary[rule] is not None and "score" in summary[rule]
    assert summary["final"]["step"] == 40
    # offline selection ranks by a metric the agent logs
    records = read_records(cli_run / "metrics.jsonl")
    assert all(dtql.AGENT.selection_metric in r for r in records if r["kind"] == "train")
    config = json.loads((cli_run / "config.json").read_text())
    text = json.dumps(config)
    assert '"dtql"' in text and '"policy_output"' in text and '"selection"' in text


def test_killed_and_resumed_run_matches_uninterrupted(cli_run, tmp_path):
    out = tmp_path / "resumed"
    _, resumed, crashed_at = crash_and_resume(_tiny_run_config(), out)
    assert crashed_at == 40

    full = records_without_timing(cli_run)
    assert records_without_timing(out) == full
    assert resumed["final"] == json.loads((cli_run / "summary.json").read_text())["final"]
    # train records inside pretraining (steps 10) carry no policy loss, later ones do
    train_records = [r for r in full if r["kind"] == "train"]
    first = train_records[0]["actor/loss"]
    assert first is None or np.isnan(first)
    assert np.isfinite(train_records[-1]["actor/loss"])
    a = launch.resume(cli_run).load_state(40)
    b = launch.resume(out).load_state(40)
    assert leaves_equal(a, b)
