"""Where the dataset builder's SAC time goes, one JSON line per measurement.

    python benchmarks/sac_speed.py [--env Hopper-v5 --steps 3000 --repeats 300]

Measured in one process, side by side:
- `loop`: env steps/s of the builder's own training loop (behaviour.Trainer, one update per env
  step after warm-up), from its training records after the warm-up;
- `parts`: medians of one jitted update + action (`sac.learn_and_act`, as the loop calls it),
  one env step, one replay sample; the update's FLOPs from XLA's cost analysis and the rate they
  run at;
- `matmul`: the machine's fp32 matmul rate at 256³ (the update's layer size) and 2048³ (its
  best), so the update's rate reads as a share of what the cores can do.
The CPU model and its vector/matrix extensions are in every line (our machines differ).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from startup import cpu_model

from diffrl.builder import behaviour, sac
from diffrl.builder.envs import describe_env, make_env
from diffrl.builder.replay import Replay
from diffrl.runlog import read_records


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if "flags" in ln), [])
    return sorted(f for f in flags if f in {"avx2", "avx512f", "amx_tile", "amx_bf16", "fma"})


HOST = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count()}


def emit(**record) -> None:
    print(json.dumps({**record, **HOST, "jax": jax.__version__}), flush=True)


def median_ms(fn, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def loop_rate(env_id: str, steps: int) -> dict:
    """The Trainer's env steps/s over its training records after the warm-up."""
    warm = steps // 3
    cfg = behaviour.TrainConfig(
        steps=steps, random_steps=warm, eval_every=steps, eval_episodes=1, log_every=250
    )
    with tempfile.TemporaryDirectory() as work:
        behaviour.Trainer(describe_env(env_id), cfg, Path(work), progress=False).run()
        records = read_records(Path(work) / "metrics.jsonl")
    trained = [r for r in records if r.get("kind") == "train" and r["step"] > warm + 250]
    rates = [r["steps_per_s"] for r in trained]
    return {"steps_per_s": statistics.median(rates), "records": len(rates)}


def parts(env_id: str, repeats: int) -> dict:
    info = describe_env(env_id)
    config, scale = sac.Config(), behaviour.action_scale(info)
    target = sac.target_entropy_of(config, info.action_dim)
    rng = np.random.default_rng(0)
    replay = Replay(20_000, info.obs_dim, info.action_dim)
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    for _ in range(20_000):
        action = rng.uniform(info.action_low, info.action_high, info.action_dim).astype(np.float32)
        nxt, reward, term, trunc, _ = env.step(action)
        replay.add(obs, action, reward, nxt, term, trunc)
        obs = env.reset()[0] if term or trunc else nxt
    batch, obs_j = replay.sample(rng, config.batch_size), jnp.asarray(obs)
    holder = [sac.init(config, info.obs_dim, info.action_dim, jax.random.PRNGKey(0))]

    def update() -> None:
        holder[0], action, _ = sac.learn_and_act(config, holder[0], batch, obs_j, scale, target)
        np.asarray(action)

    def env_step() -> None:
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, info.action_dim).astype(np.float32))
        if term or trunc:
            env.reset()

    compiled = sac.learn_and_act.lower(config, holder[0], batch, obs_j, scale, target).compile()
    cost = compiled.cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    update_ms = median_ms(update, repeats)
    return {
        "update_ms": update_ms,
        "update_mflop": flops / 1e6,
        "update_gflop_per_s": flops / update_ms / 1e6,
        "env_step_ms": median_ms(env_step, 10 * repeats),
        "sample_ms": median_ms(lambda: replay.sample(rng, config.batch_size), repeats),
    }


def matmul_rate(n: int) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    reps = max(3, int(1e9 / (2 * n**3)))

    def run() -> None:
        for _ in range(reps):
            r = f(a)
        r.block_until_ready()

    return 2 * n**3 * reps / median_ms(run, 7) / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--steps", type=int, default=3000, help="env steps of the timed loop")
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args()
    emit(kind="loop", env=args.env, **loop_rate(args.env, args.steps))
    emit(kind="parts", env=args.env, **parts(args.env, args.repeats))
    emit(kind="matmul", gflop_per_s_256=matmul_rate(256), gflop_per_s_2048=matmul_rate(2048))


if __name__ == "__main__":
    sys.exit(main())
