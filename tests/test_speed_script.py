"""benchmarks/speed.py's latency split: the arithmetic it divides by and the parts it prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402

from diffrl import nets  # noqa: E402
from diffrl.agents import dql  # noqa: E402
from diffrl.agents.api import Spec  # noqa: E402


def test_trunk_flops_is_the_hand_count_of_the_chain():
    cfg, spec = dql.Config(), Spec(17, 6, 1.0)
    actor = dql.init(cfg, spec, jax.random.PRNGKey(0)).actor
    # per trunk call: x (6) -> 256 (the state and time rows are precomputed), 256 -> 256 twice,
    # 256 -> 6; five calls per chain
    per_call = 2 * 6 * 256 + 2 * (2 * 256 * 256) + 2 * 256 * 6
    assert speed.trunk_flops(actor, 6, cfg.n_steps) == 5 * per_call == 1_341_440


def test_latency_parts_prints_each_part_and_the_rest():
    args = argparse.Namespace(obs=17, act=6, calls=3, latency_rounds=2)
    line = speed.latency_parts("dql", args)
    ms = line["ms"]
    assert set(ms) == {"call_floor", "rng", "denoiser_trunk", "loaded"}
    assert all(len(v) == 2 and min(v) > 0 for v in line["ms_rounds"].values())
    rest = ms["loaded"] - ms["rng"] - ms["denoiser_trunk"] + ms["call_floor"]
    assert abs(line["rest_ms"] - rest) < 1e-3
    assert line["trunk_mflop"] == 1.341


def test_latency_parts_do_the_work_they_are_named_after():
    cfg, spec = dql.Config(), Spec(17, 6, 1.0)
    state = dql.init(cfg, spec, jax.random.PRNGKey(0))
    fns = speed.latency_part_fns(dql.AGENT, cfg, spec, state)
    obs, key = jnp.linspace(-1.0, 1.0, 17)[None], jax.random.PRNGKey(3)
    # the trunk part chains the actor's trunk N times on the state's features
    x, features = obs[:, :6], nets.denoiser_state_features(state.actor, obs, 6)
    outputs = []
    for _ in range(cfg.n_steps):
        x = nets.denoiser_trunk(state.actor, x, features)
        outputs.append(x)
    timed = np.asarray(fns["denoiser_trunk"](obs, key, 0))
    np.testing.assert_allclose(timed, outputs[-1], rtol=1e-5, atol=1e-6)
    # a chained call, not one (at initial weights the chain settles fast, so N − 1 would pass)
    assert not np.allclose(timed, outputs[0], atol=1e-4)
    # the RNG part draws afresh per call index (the key is folded, as the policy's call does)
    assert not np.allclose(fns["rng"](obs, key, 1), fns["rng"](obs, key, 2))
    assert fns["loaded"](obs, key, 0).shape == (1, 6)
