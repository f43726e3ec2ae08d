"""DiffCPS (ALGORITHMS.md §3): the dual step on λ, the clamp, the policy delay, resume, CLI.

Tiny networks (hidden 16, N = 3); each jitted function is compiled once per module.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import (
    assert_png_has_content,
    crash_and_resume,
    records_without_timing,
    tiny_bandit_run,
)

from diffrl import launch
from diffrl.agents import diffcps, dql, get_agent
from diffrl.agents.api import Batch, Spec
from diffrl.cli import main
from diffrl.plots import plot_constraint
from diffrl.run import RunConfig, execute
from diffrl.run import directory as run_directory
from diffrl.run import loop as run_loop
from diffrl.runlog import read_records

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

SPEC = Spec(obs_dim=2, action_dim=2, max_action=1.0)
# a fast λ (lr 1e-2) so that its moves are visible after a few updates; λ starts just above λ_min
CFG = diffcps.Config(hidden=16, n_steps=3, lambda_lr=1e-2, lambda_init=0.31, lambda_min=0.3)
N_UPDATES = 8
TINY = {"hidden": 16, "n_steps": 3, "lambda_lr": 1e-2}


def _batch(seed: int = 0, b: int = 16) -> Batch:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Batch(
        observations=jnp.asarray(rng.normal(size=(b, SPEC.obs_dim)), f32),
        actions=jnp.asarray(rng.uniform(-1, 1, size=(b, SPEC.action_dim)), f32),
        rewards=jnp.asarray(rng.normal(size=b), f32),
        next_observations=jnp.asarray(rng.normal(size=(b, SPEC.obs_dim)), f32),
        not_done=jnp.ones(b, f32),
    )


@pytest.fixture(scope="module")
def state0():
    return diffcps.init(CFG, SPEC, jax.random.PRNGKey(0))


@functools.partial(jax.jit, static_argnums=2)
def _scan_updates(state, batch, kappa):
    """N_UPDATES updates on one batch with κ (static: a Config holds validated numbers)."""
    cfg = dataclasses.replace(CFG, kappa=kappa)

    def body(s, key):
        return diffcps.update(cfg, SPEC, s, batch, key)

    keys = jax.random.split(jax.random.PRNGKey(1), N_UPDATES)
    return jax.lax.scan(body, state, keys)


@pytest.fixture(scope="module")
def runs(state0):
    """κ = 0 keeps L_bc > κ (violated); κ = 1000 keeps L_bc < κ (satisfied)."""
    batch = _batch()
    return {kappa: _scan_updates(state0, batch, kappa) for kappa in (0.0, 1000.0)}


def test_config_validation():
    with pytest.raises(ValueError, match="eta"):
        diffcps.Config(eta=0.5)
    with pytest.raises(ValueError, match="policy_freq"):
        diffcps.Config(policy_freq=0)
    with pytest.raises(ValueError, match="lambda_min"):
        diffcps.Config(lambda_min=2.0, lambda_max=1.0)
    assert get_agent("diffcps") is diffcps.AGENT
    assert diffcps.Config().lambda_max == 100.0 and diffcps.Config().lambda_lr == 3e-5


def test_lambda_rises_while_violated_and_falls_while_satisfied(state0, runs):
    (up, m_up), (down, m_down) = runs[0.0], runs[1000.0]
    lam0 = float(state0.lam)
    policy = np.asarray(m_up["train/policy_update"]) == 1.0
    lam_up = np.asarray(m_up["dual/lambda"])[policy]
    lam_down = np.asarray(m_down["dual/lambda"])[policy]
    assert np.all(np.asarray(m_up["dual/constraint_violated"])[policy] == 1.0)
    assert np.all(np.asarray(m_down["dual/constraint_violated"])[policy] == 0.0)
    assert np.all(np.diff(np.concatenate([[lam0], lam_up])) > 0)  # every policy step: up
    assert np.all(np.diff(np.concatenate([[lam0], lam_down])) < 0)  # every policy step: down
    # Adam's steps on a gradient of constant sign are ≈ lr each
    n_policy = N_UPDATES // CFG.policy_freq
    assert float(up.lam) - lam0 == pytest.approx(n_policy * CFG.lambda_lr, rel=0.05)
    assert lam0 - float(down.lam) == pytest.approx(n_policy * CFG.lambda_lr, rel=0.05)
    # reference mode: λ's rate is the legacy per-evaluation cosine, i.e. constant this early
    np.testing.assert_allclose(np.asarray(m_up["dual/lr"])[policy], CFG.lambda_lr, rtol=1e-6)
    bc = np.asarray(m_up["actor/bc_loss"])[policy]
    np.testing.assert_allclose(np.asarray(m_up["dual/bc_minus_kappa"])[policy], bc, rtol=1e-6)


def test_stored_lambda_is_not_projected(runs):
    down, m_down = runs[1000.0]
    # λ started 0.01 above λ_min and took 4 steps of ≈ 0.01 down: the stored value is below λ_min
    assert float(down.lam) < CFG.lambda_min
    policy = np.asarray(m_down["train/policy_update"]) == 1.0
    lam_before = np.concatenate([[CFG.lambda_init], np.asarray(m_down["dual/lambda"])[policy][:-1]])
    used = np.asarray(m_down["dual/lambda_used"])[policy]
    np.testing.assert_allclose(used, np.maximum(lam_before, CFG.lambda_min), rtol=1e-6)
    assert used[-1] == pytest.approx(CFG.lambda_min)  # clamped where it is used


def test_actor_updates_every_policy_freq_steps(state0, runs):
    state, metrics = runs[0.0]
    assert int(state.step) == N_UPDATES
    assert int(state.actor_updates) == N_UPDATES // CFG.policy_freq
    flags = np.asarray(metrics["train/policy_update"])
    np.testing.assert_array_equal(flags, np.arange(N_UPDATES) % CFG.policy_freq == 0)
    for name in (
        "actor/loss",
        "actor/bc_loss",
        "actor/q_loss",
        "dual/lambda",
        "dual/lambda_used",
        "dual/bc_minus_kappa",
    ):
        values = np.asarray(metrics[name])
        assert np.all(np.isfinite(values[flags == 1])), name
        assert np.all(np.isnan(values[flags == 0])), name  # NaN off policy steps
    assert np.all(np.isfinite(np.asarray(metrics["critic/loss"])))  # the critic: every step
    # the actor and λ change only on policy steps; the critic changes on every step
    assert not np.array_equal(state.actor["trunk"]["l0"]["w"], state0.actor["trunk"]["l0"]["w"])


@jax.jit
def _policy_vs_dql(state, batch, key, lam, weight):
    """DiffCPS's policy step at stored λ next to Diffusion-QL's actor step with weight_bc."""
    s = state.replace(lam=lam)
    ours, metrics = diffcps.policy_step(CFG, SPEC, s, batch, key)
    theirs, _ = dql.update_actor(CFG, SPEC, s, batch, key, weight, 1.0)
    return ours.actor, theirs.actor, metrics


@pytest.mark.parametrize("lam, bound", [(-5.0, CFG.lambda_min), (500.0, CFG.lambda_max)])
def test_clamp_bounds_in_the_actor_loss(state0, lam, bound):
    key = jax.random.PRNGKey(3)
    args = (state0, _batch(1), key, jnp.float32(lam))
    ours, at_bound, metrics = _policy_vs_dql(*args, jnp.float32(bound))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(at_bound), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(metrics["dual/lambda_used"]) == pytest.approx(bound)
    assert float(metrics["actor/loss"]) == pytest.approx(
        bound * float(metrics["actor/bc_loss"]) + float(metrics["actor/q_loss"]), rel=1e-5
    )
    if lam < 0:  # a negative raw λ would push L_bc up: a different step
        _, at_raw, _ = _policy_vs_dql(*args, jnp.float32(lam))
        leaves = zip(jax.tree.leaves(ours), jax.tree.leaves(at_raw), strict=True)
        assert not all(np.allclose(a, b) for a, b in leaves)


# -- through the training loop ------------------------------------------------------------------
def tiny_config(**changes) -> RunConfig:
    return tiny_bandit_run("diffcps", TINY, **{"selection": "none", **changes})


@pytest.fixture
def shared_compilations(monkeypatch):
    """The three executions below share one chunk and one act compilation: both functions depend
    only on their arguments (agent, config, spec, sizes), never on the run they serve."""
    for module, name in ((run_loop, "make_chunk_fn"), (run_directory, "make_act_fn")):
        real = getattr(module, name)
        cache = {}

        def memo(*args, _real=real, _cache=cache, **kwargs):
            key = (*args, *sorted(kwargs.items()))
            if key not in _cache:
                _cache[key] = _real(*args, **kwargs)
            return _cache[key]

        monkeypatch.setattr(module, name, memo)


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path, shared_compilations):
    full_out = tmp_path / "full"
    full_run = launch.start(tiny_config(), full_out)
    full_summary = execute(full_run, progress=False)
    out = tmp_path / "resumed"
    resumed_run, resumed, crashed_at = crash_and_resume(tiny_config(), out)
    assert crashed_at == 40

    full = records_without_timing(full_out)
    assert records_without_timing(out) == full
    assert resumed["final"] == full_summary["final"]
    a = full_run.load_state(40)
    b = resumed_run.load_state(40)
    assert float(a.lam) != diffcps.Config().lambda_init  # λ moved, so its resume is tested
    assert int(a.actor_updates) == 40 // 2
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # λ's optimiser state is part of the checkpoint (Adam's count and moments)
    counts = [np.asarray(x) for x in jax.tree.leaves(a.lam_opt) if np.asarray(x).dtype.kind == "i"]
    assert counts and all(int(c) == 20 for c in counts)

    train_records = [r for r in full if r["kind"] == "train"]
    assert all(r["train/policy_update"] == pytest.approx(0.5) for r in train_records)
    assert all(0.0 <= r["dual/constraint_violated"] <= 1.0 for r in train_records)
    png = plot_constraint(full_out)
    assert png.name == "constraint.png"
    assert assert_png_has_content(png, 1100, 320) == (1100, 320)


def test_cli_train_diffcps_on_circle(tmp_path, capsys):
    out = tmp_path / "cli"
    args = (
        "train --algo diffcps --dataset bandit:circle --steps 20 --eval-every 10 --mode clean"
        " --steps-per-call 10 --batch-size 16 --quiet --set hidden=16 --set n_steps=3"
        " --set selection=none --set kappa=0.5"
    )
    code = main([*args.split(), "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "diffcps" and summary["evaluations"] == 2
    for rule in ("final", "best", "offline_selected"):
        assert summary[rule] is not None and "support_rate" in summary[rule], rule
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["kappa"] == 0.5 and config["agent"]["mode"] == "clean"
    records = [r for r in read_records(out / "metrics.jsonl") if r["kind"] == "train"]
    assert all("dual/lambda" in r and "dual/bc_minus_kappa" in r for r in records)
    # clean mode: λ's learning rate follows the per-step cosine like the networks'
    lam_lr = diffcps.Config().lambda_lr
    assert records[0]["dual/lr"] > 0.5 * lam_lr > records[-1]["dual/lr"] > 0.0
    # a finished DiffCPS run draws its constraint figure next to the learning curves
    assert assert_png_has_content(out / "constraint.png", 1100, 320) == (1100, 320)
    assert assert_png_has_content(out / "curves.png", 1500, 300) == (1500, 300)
