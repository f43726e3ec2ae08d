"""TD3+BC (agents/td3bc.py): delayed actor and target steps, clipped target noise, λ
normalisation, state normalisation, exact resume through the loop and a CLI run."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import (
    assert_registered,
    assert_trains,
    crash_and_resume,
    records_without_timing,
    tiny_bandit_run,
    tree_changed,
    tree_close,
    tree_equal,
)

from diffrl import launch
from diffrl.agents import td3bc
from diffrl.agents.api import Spec
from diffrl.cli import main
from diffrl.run import RunConfig, execute

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
AGENT = td3bc.AGENT  # `batch` and `trained` (tests/conftest.py) train it
CFG = td3bc.Config(hidden=32)
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def test_registered_and_trains(trained):
    assert_registered(AGENT, "td3bc", with_data=True, q_value=False)
    assert_trains(
        trained,
        ("actor", "critic", "actor_target", "critic_target"),
        ("actor/loss", "actor/grad_norm", "actor/bc_loss", "actor/q_policy", "actor/q_weight"),
    )


def test_td3bc_actor_and_targets_move_every_second_step(trained):
    cfg = CFG
    s0, (s1, m1), (s2, m2) = trained
    # step 0 (official total_it 1): critic only
    assert tree_changed(s0.critic, s1.critic)
    for field in ("actor", "actor_opt", "actor_target", "critic_target"):
        assert tree_equal(getattr(s0, field), getattr(s1, field)), field
    assert float(m1["train/policy_update"]) == 0.0 and np.isnan(float(m1["actor/loss"]))
    # step 1: actor step, then Polyak of both targets towards the new online networks
    assert float(m2["train/policy_update"]) == 1.0
    assert tree_changed(s1.actor, s2.actor)
    for target, online in (("actor_target", "actor"), ("critic_target", "critic")):
        expect = jax.tree.map(
            lambda t, o: (1 - cfg.tau) * np.asarray(t) + cfg.tau * np.asarray(o),
            getattr(s1, target),
            getattr(s2, online),
        )
        assert tree_close(getattr(s2, target), expect, rtol=1e-6, atol=1e-8)
    # the actor loss is −λ·mean Q₁ + the BC term
    expect = -float(m2["actor/q_weight"]) * float(m2["actor/q_policy"]) + float(m2["actor/bc_loss"])
    assert float(m2["actor/loss"]) == pytest.approx(expect, rel=1e-5)


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
    cfg = CFG
    state = trained[2][0]
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
    assert float(m_a["critic/loss"]) == pytest.approx(float(m_b["critic/loss"]), rel=1e-5)
    assert tree_close(a.critic, b.critic, rtol=1e-4, atol=1e-6)


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
    assert tree_equal(a, b)
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
