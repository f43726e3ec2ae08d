"""Training speed side by side with the official PyTorch code, in one process, same sizes and
threads; one JSON line per algorithm and one for the machine.

    python benchmarks/official_speed.py --official-dql PATH/Diffusion-Policies-for-Offline-RL \\
        --official-dtql PATH/Diffusion_Trusted_Q_Learning [--steps 200 --repeats 5]

The official agents are imported from the user's checkouts (never copied); PyTorch is installed
by the user. Both sides train on the same random transitions (100 000 rows, obs 17, act 6),
batch 256, Diffusion-QL with N = 5, each side with all the machine's cores (torch's intra-op
threads = JAX's CPU threads = the CPU count).

The two sides alternate block by block (`--repeats` pairs of `--steps` updates each, after a
warm-up block of each), so a machine whose speed drifts (a shared host's neighbours) slows both
alike; `ratio` is the median of the per-pair ratios. diffrl's block is the library's own scanned
chunk (run.make_chunk_fn); the official block is its own `train` calls (Diffusion-QL:
`train(sampler, iterations=steps)`; DTQL: `steps` calls of its one-step `train`, main phase).

Why rates swing between repeats: before every pair a 256³ fp32 matmul probe (the step's own
matrix size) measures what the machine gives at that moment, and each block records the share of
CPU time the hypervisor took (`steal_share`, from /proc/stat). `diffrl_spread` is the raw spread
of diffrl's rates, `diffrl_spread_per_probe` the spread of rate ÷ probe: a large first and a
small second mean the swing is the machine, not the program.

`share_of_best_matmul`: the update's FLOPs (XLA's cost analysis of one diffrl step) times its
rate, over the machine's best fp32 matmul rate (2048³, measured in this run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np
from sac_speed import HOST, matmul_rate
from speed import random_data

from diffrl.agents import get_agent
from diffrl.agents.api import Spec
from diffrl.run import make_chunk_fn

OBS, ACT, BATCH, ROWS = 17, 6, 256, 100_000


def host_arrays(data) -> dict[str, np.ndarray]:
    return {
        "observations": np.asarray(data.observations),
        "actions": np.asarray(data.actions),
        "next_observations": np.asarray(data.next_observations),
        "rewards": np.asarray(data.rewards),
        "terminals": 1.0 - np.asarray(data.not_done),
    }


def steal_ticks() -> int:
    """CPU time the hypervisor gave to others (all CPUs, in clock ticks); 0 where not reported."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) if len(fields) > 8 else 0


def timed_block(block, steps: int) -> dict[str, float]:
    """One block's rate and the share of CPU time stolen from this machine meanwhile."""
    s0, t0 = steal_ticks(), time.perf_counter()
    block(steps)
    wall = time.perf_counter() - t0
    stolen = (steal_ticks() - s0) / os.sysconf("SC_CLK_TCK") / (wall * (os.cpu_count() or 1))
    return {"rate": steps / wall, "steal": stolen}


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def official_dql(path: Path, arrays: dict) -> object:
    sys.path.insert(0, str(path))
    from agents.ql_diffusion import Diffusion_QL
    from utils.data_sampler import Data_Sampler

    sampler = Data_Sampler(arrays, "cpu", "no")
    agent = Diffusion_QL(OBS, ACT, 1.0, "cpu", discount=0.99, tau=0.005, beta_schedule="vp",
                         n_timesteps=5, eta=1.0, lr=3e-4, grad_norm=9.0)  # fmt: skip
    return lambda steps: agent.train(sampler, steps, batch_size=BATCH)


def official_dtql(path: Path, arrays: dict) -> object:
    import gymnasium as gym

    for name in [m for m in sys.modules if m == "agents" or m.startswith(("agents.", "utils"))]:
        del sys.modules[name]  # the two checkouts both have top-level `agents` and `utils`
    sys.path.insert(0, str(path))
    from agents.dtql import DTQL
    from utils.data_sampler import Data_Sampler

    sampler = Data_Sampler(arrays, "cpu", "no")
    box = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)
    agent = DTQL("cpu", OBS, ACT, action_space=box)

    def block(steps: int) -> None:
        for _ in range(steps):
            agent.train(sampler, batch_size=BATCH)

    return block


def ours(algo: str, data, steps: int) -> tuple[object, float]:
    """diffrl's timed block (the scanned chunk of `steps` updates) and the FLOPs of one update."""
    agent = get_agent(algo)
    cfg = agent.Config()
    if getattr(cfg, "pretrain_steps", 0):
        cfg = dataclasses.replace(cfg, pretrain_steps=0)  # the main phase, as the official side
    spec = Spec(OBS, ACT, 1.0)
    chunk = make_chunk_fn(agent, cfg, spec, BATCH, steps)
    box = {"state": agent.init(cfg, spec, jax.random.PRNGKey(0)), "key": jax.random.PRNGKey(1)}

    def block(_: int) -> None:
        box["key"], key = jax.random.split(box["key"])
        box["state"], m = chunk(box["state"], data, key)
        jax.block_until_ready(m)

    one = make_chunk_fn(agent, cfg, spec, BATCH, 1)
    cost = one.lower(box["state"], data, jax.random.PRNGKey(1)).compile().cost_analysis()
    return block, float((cost[0] if isinstance(cost, list) else cost)["flops"])


def side_by_side(mine, theirs, steps: int, repeats: int) -> dict[str, list[float]]:
    """Alternating blocks, each pair after a matmul probe; one record per pair."""
    mine(steps), theirs(steps)  # compile and warm up
    rows: dict[str, list[float]] = {k: [] for k in ("probe", "mine", "theirs", "steal")}
    for _ in range(repeats):
        rows["probe"].append(matmul_rate(256))
        a, b = timed_block(mine, steps), timed_block(theirs, steps)
        rows["mine"].append(a["rate"])
        rows["theirs"].append(b["rate"])
        rows["steal"].append(max(a["steal"], b["steal"]))
    return rows


def speed_line(algo: str, rows: dict[str, list[float]], flops: float, best: float) -> dict:
    mine, theirs, probe = rows["mine"], rows["theirs"], rows["probe"]
    rate = statistics.median(mine)
    return {
        "kind": "speed", "algo": algo, "diffrl_steps_per_s": rate,
        "official_steps_per_s": statistics.median(theirs),
        "ratio": statistics.median([a / b for a, b in zip(mine, theirs, strict=True)]),
        "diffrl_runs": mine, "official_runs": theirs, "probe_gflop_per_s": probe,
        "steal_share": rows["steal"], "diffrl_spread": spread(mine),
        "diffrl_spread_per_probe": spread([a / p for a, p in zip(mine, probe, strict=True)]),
        "update_mflop": flops / 1e6, "share_of_best_matmul": flops * rate / 1e9 / best,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official-dql", type=Path, required=True)
    p.add_argument("--official-dtql", type=Path, required=True)
    p.add_argument("--steps", type=int, default=200, help="updates per timed block")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count())
    best = matmul_rate(2048)
    print(json.dumps({"kind": "machine", **HOST, "best_matmul_gflop_per_s": best,
                      "torch": torch.__version__, "jax": jax.__version__}), flush=True)  # fmt: skip
    data = random_data(ROWS, OBS, ACT)
    arrays = host_arrays(data)
    for algo, make in (("dql", official_dql), ("dtql", official_dtql)):
        mine, flops = ours(algo, data, args.steps)
        theirs = make(getattr(args, f"official_{algo}"), arrays)
        rows = side_by_side(mine, theirs, args.steps, args.repeats)
        print(json.dumps(speed_line(algo, rows, flops, best)), flush=True)


if __name__ == "__main__":
    main()
