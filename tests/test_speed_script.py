"""benchmarks/speed.py's latency split: the arithmetic it divides by and the parts it prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402

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
