"""Training speed side by side with the official PyTorch code, in one process, same sizes and
threads; one JSON line per algorithm and one for the machine.

    python benchmarks/official_speed.py --official-dql PATH/Diffusion-Policies-for-Offline-RL \\
        --official-dtql PATH/Diffusion_Trusted_Q_Learning [--steps 200 --repeats 5]

The official agents are imported from the user's checkouts (never copied); PyTorch is installed
by the user. Both sides train on the same random transitions (100 000 rows, obs 17, act 6),
batch 256, Diffusion-QL with N = 5, each side with all the machine's cores (torch's intra-op
threads = JAX's CPU threads = the CPU count). Rates are medians over `--repeats` timed blocks of
`--steps` updates after a warm-up block: for diffrl, the library's own scanned chunk
(run.make_chunk_fn); for the official code, its own `train` calls (Diffusion-QL:
`train(sampler, iterations=steps)`; DTQL: `steps` calls of its one-step `train`, main phase).

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
from speed import random_data, time_training

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


def timed(block, steps: int, repeats: int) -> list[float]:
    block(steps)  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(steps)
        rates.append(steps / (time.perf_counter() - t0))
    return rates


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


def ours(algo: str, data, steps: int, repeats: int) -> tuple[list[float], float]:
    agent = get_agent(algo)
    cfg = agent.Config()
    if getattr(cfg, "pretrain_steps", 0):
        cfg = dataclasses.replace(cfg, pretrain_steps=0)  # the main phase, as the official side
    spec = Spec(OBS, ACT, 1.0)
    rates = time_training(agent, cfg, spec, data, BATCH, steps, repeats)
    one = make_chunk_fn(agent, cfg, spec, BATCH, 1)
    state = agent.init(cfg, spec, jax.random.PRNGKey(0))
    cost = one.lower(state, data, jax.random.PRNGKey(1)).compile().cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    return rates, flops


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
        path = getattr(args, f"official_{algo}")
        mine, flops = ours(algo, data, args.steps, args.repeats)
        theirs = timed(make(path, arrays), args.steps, args.repeats)
        rate, official = statistics.median(mine), statistics.median(theirs)
        print(json.dumps({
            "kind": "speed", "algo": algo, "diffrl_steps_per_s": rate,
            "official_steps_per_s": official, "ratio": rate / official,
            "diffrl_runs": mine, "official_runs": theirs,
            "diffrl_spread": (max(mine) - min(mine)) / rate,
            "update_mflop": flops / 1e6,
            "share_of_best_matmul": flops * rate / 1e9 / best,
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
