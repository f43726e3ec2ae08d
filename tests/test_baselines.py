"""The baseline agents (bc, diffbc, cvaebc, td3bc, iql): the agent contract, each algorithm's
defining pieces on hand-made cases, TD3+BC's exact resume through the loop and a CLI run.

Networks are tiny (hidden 16-32); every jitted function is compiled once per module.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import crash_and_resume, random_batch, records_without_timing, tiny_bandit_run

from diffrl import launch
from diffrl.acting import policy_action
from diffrl.agents import ALGORITHMS, bc, cvaebc, diffbc, dql, get_agent, iql, td3bc
from diffrl.agents.api import ActionChoice, Batch, Spec
from diffrl.cli import main
from diffrl.diffusion import policy as ddpm_policy
from diffrl.diffusion.policy import DDPMPolicy
from diffrl.presets import get_preset, preset_names
from diffrl.run import RunConfig, agent_config, execute, resolve

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
B = 16
BASELINES = ("bc", "diffbc", "cvaebc", "td3bc", "iql")
CONFIGS = {
    "bc": bc.Config(hidden=32),
    "diffbc": diffbc.Config(hidden=32, n_steps=3),
    "cvaebc": cvaebc.Config(hidden=32),
    "td3bc": td3bc.Config(hidden=32),
    "iql": iql.Config(hidden=32),
}
# the parameter fields each agent trains
PARAMS = {
    "bc": ("actor",),
    "diffbc": ("actor",),
    "cvaebc": ("encoder", "decoder"),
    "td3bc": ("actor", "critic", "actor_target", "critic_target"),
    "iql": ("actor", "critic", "critic_target", "value"),
}


def _changed(a, b) -> bool:
    """Every leaf of `b` differs from the same leaf of `a`."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def _same(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def _close(a, b, **tol) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.allclose(np.asarray(x), np.asarray(y), **tol) for x, y in pairs)


pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


@pytest.fixture(scope="module")
def batch():
    return random_batch(SPEC, 1, B)


def _init_and_two_updates(name: str, batch: Batch):
    """init, then two updates (so that TD3+BC's delayed actor step has run), in one program."""
    module, cfg = get_agent(name), CONFIGS[name]

    def run(key):
        s0 = module.init(cfg, SPEC, key)

        def body(s, k):
            s, m = module.update(cfg, SPEC, s, batch, k)
            return s, (s, m)

        _, (states, metrics) = jax.lax.scan(body, s0, jax.random.split(key, 2))
        return s0, states, metrics

    s0, states, metrics = jax.jit(run)(jax.random.PRNGKey(0))
    pick = [jax.tree.map(lambda x, i=i: x[i], (states, metrics)) for i in (0, 1)]
    return s0, pick[0], pick[1]


@pytest.fixture(scope="module")
def trained(batch):
    """Per agent: the initial state and (state, metrics) after one and after two updates."""
    return {name: _init_and_two_updates(name, batch) for name in BASELINES}


# -- the contract (tests/test_agents_api.py checks every agent's run through it) ----------------
def test_registered_with_the_contract():
    for name in BASELINES:
        assert name in ALGORITHMS
        agent = get_agent(name)
        assert agent.name == name and agent.selection_metric == "bc_loss"
        cfg = agent.Config()
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.hidden = 1  # frozen
    assert get_agent("td3bc").with_data is not None  # the optional data hook
    assert all(get_agent(n).with_data is None for n in ("bc", "diffbc", "cvaebc", "iql"))


@pytest.mark.parametrize("name", BASELINES)
def test_update_changes_parameters_and_logs_finite_metrics(trained, name):
    s0, (s1, m1), (s2, m2) = trained[name]
    assert int(s1.step) == 1 and int(s2.step) == 2
    assert jax.tree.structure(s2) == jax.tree.structure(s0)
    for field in PARAMS[name]:
        assert _changed(getattr(s0, field), getattr(s2, field)), field
    assert get_agent(name).selection_metric in m2
    for key, value in m2.items():
        assert np.shape(value) == () and np.isfinite(float(value)), (name, key)
    for key, value in m1.items():
        nan_ok = name == "td3bc" and key in (
            "actor_loss",
            "actor_gn",
            "bc_loss",
            "q_policy",
            "q_weight",
        )
        assert nan_ok or np.isfinite(float(value)), (name, key)


@pytest.mark.parametrize("name", BASELINES)
def test_act_shapes_box_and_policy_state(trained, name):
    agent, cfg = get_agent(name), CONFIGS[name]
    state = trained[name][2][0]
    pruned = agent.policy_state(state, False)
    obs = jnp.asarray(np.random.default_rng(3).normal(size=(10, SPEC.obs_dim)), jnp.float32)
    act = jax.jit(lambda s, o, k: agent.sample(cfg, SPEC, s, o, k))
    a = np.asarray(act(pruned, obs, jax.random.PRNGKey(4)))
    assert a.shape == (10, SPEC.action_dim)
    assert np.isfinite(a).all() and np.all(np.abs(a) <= np.float32(SPEC.max_action))
    assert (agent.q_value is None) == (name in ("bc", "diffbc", "cvaebc", "td3bc"))


# -- BC -----------------------------------------------------------------------------------------
def test_bc_nll_decreases_on_a_fixed_batch(batch):
    cfg = dataclasses.replace(CONFIGS["bc"], lr=3e-3)
    state = bc.init(cfg, SPEC, jax.random.PRNGKey(0))

    @jax.jit
    def many(state):
        def body(s, _):
            s, m = bc.update(cfg, SPEC, s, batch, jax.random.PRNGKey(0))
            return s, m["bc_loss"]

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
    state = trained["bc"][2][0]
    mean = policy_action(bc.AGENT, CONFIGS["bc"], SPEC, ActionChoice(policy_output="mean"))
    a1 = mean(state, batch.observations, jax.random.PRNGKey(0))
    a2 = mean(state, batch.observations, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a1, a2)
    s1 = bc.sample(CONFIGS["bc"], SPEC, state, batch.observations, jax.random.PRNGKey(0))
    assert not np.allclose(s1, a1)
    with pytest.raises(ValueError, match="'sample' or 'mean'"):
        ActionChoice(policy_output="mode")


# -- diffusion BC -------------------------------------------------------------------------------
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
    cfg = CONFIGS["diffbc"]
    key = jax.random.PRNGKey(0)
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    s_dql = dql.init(dql.Config(**shared, eta=0.0), SPEC, key)
    # same key, same denoiser (jitted vs eager init may round the last bit differently)
    assert _close(trained["diffbc"][0].actor, s_dql.actor, rtol=1e-6, atol=1e-7)
    # acting is DQL's plain reverse-chain sampler on the same denoiser
    state = trained["diffbc"][2][0]
    a = diffbc.sample(cfg, SPEC, state, batch.observations, key)
    expect = ddpm_policy.sample_actions(
        DDPMPolicy.of(cfg), state.actor, batch.observations, key, SPEC.action_dim, SPEC.max_action
    )
    np.testing.assert_allclose(a, expect, rtol=1e-6, atol=1e-7)


def test_diffbc_bc_loss_decreases(batch):
    cfg = dataclasses.replace(CONFIGS["diffbc"], actor_lr=3e-3)
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


# -- CVAE BC ------------------------------------------------------------------------------------
def test_cvae_kl_on_hand_made_cases():
    kl = cvaebc.kl_to_standard_normal
    assert float(kl(jnp.zeros((3, 4)), jnp.zeros((3, 4)))) == pytest.approx(0.0, abs=1e-7)
    # per element −½(1 + 2 log σ − μ² − σ²): μ = 1, σ = 1 → ½; μ = 0, σ = 1 → 0; mean ¼
    assert float(kl(jnp.array([[1.0, 0.0]]), jnp.zeros((1, 2)))) == pytest.approx(0.25)
    # μ = 0, σ = 2: −½(1 + 2 ln 2 − 4) = 1.5 − ln 2
    got = float(kl(jnp.zeros((1, 1)), jnp.full((1, 1), math.log(2.0))))
    assert got == pytest.approx(1.5 - math.log(2.0), rel=1e-6)


def test_cvae_loss_is_recon_plus_half_kl(trained):
    m = trained["cvaebc"][2][1]
    expect = float(m["recon_loss"]) + 0.5 * float(m["kl_loss"])
    assert float(m["bc_loss"]) == pytest.approx(expect, rel=1e-5)
    assert CONFIGS["cvaebc"].latent_dim(SPEC) == 2 * SPEC.action_dim
    assert cvaebc.Config().hidden == 750 and cvaebc.Config().lr == 1e-3


def test_cvae_act_decodes_clipped_prior_latents(trained, batch):
    cfg, state = CONFIGS["cvaebc"], trained["cvaebc"][2][0]
    key = jax.random.PRNGKey(5)
    z = np.asarray(cvaebc.prior_latent(cfg, SPEC, key, 2000))
    assert z.shape == (2000, 4)
    assert np.all(np.abs(z) <= 0.5)
    assert np.mean(np.abs(z) == 0.5) > 0.5  # N(0, 1) lies beyond ±0.5 with probability 0.62
    obs = batch.observations
    a = cvaebc.sample(cfg, SPEC, state, obs, key)
    expect = cvaebc.decode(SPEC, state.decoder, obs, cvaebc.prior_latent(cfg, SPEC, key, B))
    np.testing.assert_array_equal(a, expect)


# -- TD3+BC -------------------------------------------------------------------------------------
def test_td3bc_actor_and_targets_move_every_second_step(trained):
    cfg = CONFIGS["td3bc"]
    s0, (s1, m1), (s2, m2) = trained["td3bc"]
    # step 0 (official total_it 1): critic only
    assert _changed(s0.critic, s1.critic)
    for field in ("actor", "actor_opt", "actor_target", "critic_target"):
        assert _same(getattr(s0, field), getattr(s1, field)), field
    assert float(m1["policy_update"]) == 0.0 and np.isnan(float(m1["actor_loss"]))
    # step 1: actor step, then Polyak of both targets towards the new online networks
    assert float(m2["policy_update"]) == 1.0
    assert _changed(s1.actor, s2.actor)
    for target, online in (("actor_target", "actor"), ("critic_target", "critic")):
        expect = jax.tree.map(
            lambda t, o: (1 - cfg.tau) * np.asarray(t) + cfg.tau * np.asarray(o),
            getattr(s1, target),
            getattr(s2, online),
        )
        assert _close(getattr(s2, target), expect, rtol=1e-6, atol=1e-8)
    # the actor loss is −λ·mean Q₁ + the BC term
    expect = -float(m2["q_weight"]) * float(m2["q_policy"]) + float(m2["bc_loss"])
    assert float(m2["actor_loss"]) == pytest.approx(expect, rel=1e-5)


def test_td3bc_target_noise_is_clipped():
    key = jax.random.PRNGKey(0)
    cfg = td3bc.Config()
    noise = np.asarray(td3bc.smoothing_noise(cfg, SPEC, key, (20000, 2)))
    limit = cfg.noise_clip * SPEC.max_action  # 0.25
    assert np.all(np.abs(noise) <= limit + 1e-7)
    assert noise.std() == pytest.approx(cfg.policy_noise * SPEC.max_action, rel=0.05)  # 0.1
    wide = np.asarray(
        td3bc.smoothing_noise(dataclasses.replace(cfg, policy_noise=10.0), SPEC, key, (1000, 2))
    )
    assert np.all(np.abs(wide) <= limit + 1e-7) and np.mean(np.abs(wide) == limit) > 0.9


def test_td3bc_lambda_normalisation():
    q = jnp.array([1.0, -3.0, 2.0, -2.0])  # mean |Q| = 2
    assert float(td3bc.q_weight(2.5, q)) == pytest.approx(1.25)
    assert np.all(np.asarray(jax.grad(lambda q: td3bc.q_weight(2.5, q))(q)) == 0.0)  # detached
    assert td3bc.Config().alpha == 2.5 and td3bc.Config().policy_freq == 2


def test_td3bc_state_normalisation_in_training_and_acting(trained, batch):
    cfg = CONFIGS["td3bc"]
    state = trained["td3bc"][2][0]
    data = np.random.default_rng(7).normal(3.0, 2.0, size=(500, SPEC.obs_dim))
    normed = td3bc.with_data(cfg, state, data)
    np.testing.assert_allclose(normed.obs_mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(normed.obs_std, data.std(0) + 1e-3, rtol=1e-6)
    off = td3bc.with_data(dataclasses.replace(cfg, normalize_states=False), state, data)
    assert np.all(off.obs_mean == 0.0) and np.all(off.obs_std == 1.0)

    def pre(obs):  # what the agent should see
        return (obs - normed.obs_mean) / normed.obs_std

    key = jax.random.PRNGKey(0)
    obs = batch.observations * 2.0 + 3.0
    np.testing.assert_allclose(
        td3bc.sample(cfg, SPEC, normed, obs, key),
        td3bc.sample(cfg, SPEC, state, pre(obs), key),
        rtol=1e-5,
        atol=1e-6,
    )
    raw = batch._replace(observations=obs, next_observations=obs[::-1])
    pre_batch = raw._replace(observations=pre(obs), next_observations=pre(obs[::-1]))
    step = jax.jit(lambda s, b: td3bc.update(cfg, SPEC, s, b, key))
    a, m_a = step(normed, raw)
    b, m_b = step(state, pre_batch)
    assert float(m_a["critic_loss"]) == pytest.approx(float(m_b["critic_loss"]), rel=1e-5)
    assert _close(a.critic, b.critic, rtol=1e-4, atol=1e-6)


# -- IQL ----------------------------------------------------------------------------------------
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
    cfg, state = CONFIGS["iql"], trained["iql"][2][0]
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
    assert float(aux["bc_loss"]) == pytest.approx(float(-logp.mean()), rel=1e-5)


def test_iql_actor_schedule_and_dropout(batch, trained):
    sched = iql.Config(total_steps=1000).actor_schedule()
    assert float(sched(jnp.int32(0))) == pytest.approx(3e-4)
    assert float(sched(jnp.int32(500))) == pytest.approx(1.5e-4, rel=1e-5)
    flat = iql.Config(lr_decay=False).actor_schedule()
    assert float(flat(jnp.int32(10**6))) == pytest.approx(3e-4)
    state = trained["iql"][2][0]

    def loss(cfg, seed):
        args = (cfg, SPEC, state.actor, state.critic_target, state.value, batch)
        return float(iql.actor_loss(*args, jax.random.PRNGKey(seed))[0])

    dropped = dataclasses.replace(CONFIGS["iql"], actor_dropout=0.5)
    assert loss(dropped, 0) != loss(dropped, 1)  # dropout in training
    assert loss(CONFIGS["iql"], 0) == loss(CONFIGS["iql"], 1)
    # acting is deterministic (the mean, no dropout) unless a sample is asked for
    deployed = policy_action(iql.AGENT, dropped, SPEC, iql.AGENT.default_choice)
    a = [deployed(state, batch.observations, jax.random.PRNGKey(i)) for i in (0, 1)]
    np.testing.assert_array_equal(a[0], a[1])
    ranked = policy_action(iql.AGENT, CONFIGS["iql"], SPEC, ActionChoice("argmax", 4))
    assert ranked(state, batch.observations, jax.random.PRNGKey(0)).shape == (B, SPEC.action_dim)


# -- presets ------------------------------------------------------------------------------------
def test_presets():
    assert len(preset_names("td3bc")) == 15
    assert get_preset("td3bc", "hopper-medium-replay-v2")["alpha"] == 2.5
    mujoco = get_preset("iql", "hopper-medium-v2")
    assert (mujoco["expectile"], mujoco["temperature"]) == (0.7, 3.0)
    assert mujoco["reward_transform"] == "iql_locomotion"
    ant = get_preset("iql", "antmaze-large-play-v0")
    assert (ant["expectile"], ant["temperature"], ant["reward_transform"]) == (
        0.9,
        10.0,
        "iql_antmaze",
    )
    assert ant["eval_episodes"] == 100
    for name in ("kitchen-partial-v0", "pen-human-v1"):
        p = get_preset("iql", name)
        assert (p["expectile"], p["temperature"], p["actor_dropout"]) == (0.7, 0.5, 0.1)
    for algo in ("td3bc", "iql"):  # every row is a valid agent config
        for name in preset_names(algo):
            cfg = resolve({"algo": algo, "dataset": "x.npz", "preset": name})
            agent_config(cfg)
            assert cfg.steps == 1_000_000


# -- through the training loop and the CLI --------------------------------------------------------
def _td3bc_run(**changes) -> RunConfig:
    return tiny_bandit_run("td3bc", {"hidden": 16}, **changes)


def test_td3bc_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    full_out = tmp_path / "full"
    full = execute(launch.start(_td3bc_run(), full_out), progress=False)
    out = tmp_path / "resumed"
    _, resumed, _ = crash_and_resume(_td3bc_run(), out)
    assert records_without_timing(out) == records_without_timing(full_out)
    assert resumed["final"] == full["final"]
    a, b = launch.resume(full_out).load_state(40), launch.resume(out).load_state(40)
    assert _same(a, b)
    # the state statistics were taken from the data before step 0 and are in every checkpoint
    data_obs = launch.resume(out).data.observations
    s0 = launch.resume(out).load_state(0)
    np.testing.assert_allclose(s0.obs_std, data_obs.std(0) + 1e-3, rtol=1e-6)
    np.testing.assert_array_equal(s0.obs_std, a.obs_std)


def test_cli_trains_and_evaluates_td3bc(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--algo",
            "td3bc",
            "--dataset",
            "bandit:corners",
            "--steps",
            "200",
            "--eval-every",
            "100",
            "--steps-per-call",
            "100",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "td3bc" and summary["evaluations"] == 2
    assert summary["offline_selected"] is not None
    assert main(["eval", str(out)]) == 0
    assert list(out.glob("eval-final-*.json"))
