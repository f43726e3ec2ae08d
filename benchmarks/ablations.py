"""What each speed choice of the Diffusion-QL step buys, measured side by side in one process.

    python benchmarks/ablations.py [--repeats 5 --chunk 100]

Prints one JSON line per variant (training steps/s at batch 256, N = 5, observation 17, action 6,
the library's scan-fused chunk), then a `ceiling` line: the step's FLOPs from XLA's cost analysis,
the measured fp32 matmul rate of this machine (256×256 and 1024×1024, all cores) and the steps/s
the step could reach if it ran at that rate throughout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from diffrl import nets
from diffrl.agents import dql
from diffrl.agents.common import Spec

LIBRARY_MISH = nets.mish


def mish_one_exp_autodiff(x):
    """The one-exp formula, differentiated by JAX instead of the hand-written derivative."""
    e = jnp.exp(jnp.minimum(x, 20.0))
    n = e * (e + 2.0)
    return x * n / (n + 2.0)


VARIANTS = {
    "library": LIBRARY_MISH,
    "mish_one_exp_autodiff": mish_one_exp_autodiff,
    "mish_tanh_softplus_autodiff": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "relu_not_the_algorithm": jax.nn.relu,  # the activation's share of the step, for reference
}


def steps_per_s(chunk: int, repeats: int) -> tuple[float, list[float], float]:
    """Median steps/s of the library's chunk (speed.time_training), its runs, FLOPs per step."""
    import speed

    cfg, spec = dql.Config(), Spec(17, 6, 1.0)
    data = speed.random_data(100_000, 17, 6)
    rates = speed.time_training(dql, cfg, spec, data, 256, chunk, repeats)
    state = dql.init(cfg, spec, jax.random.PRNGKey(0))
    flops = step_flops(cfg, spec, state, data, jax.random.PRNGKey(1))
    return statistics.median(rates), rates, flops


def step_flops(cfg, spec, state, data, key) -> float:
    """FLOPs of one update from XLA's cost analysis (a scan body is counted once, so no scan)."""
    batch = jax.tree.map(lambda x: x[:256], data)
    lowered = jax.jit(lambda s, b, k: dql.update(cfg, spec, s, b, k)).lower(state, batch, key)
    cost = lowered.compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost).get("flops", float("nan"))


def matmul_gflops(n: int, seconds: float = 1.0) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    reps = max(3, int(seconds * 150e9 / (2 * n**3)))
    t0 = time.perf_counter()
    for _ in range(reps):
        out = f(a)
    out.block_until_ready()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chunk", type=int, default=100)
    args = p.parse_args()
    step_flops = float("nan")
    for name, act in VARIANTS.items():
        nets.mish = act  # traced at the first call of a new chunk function
        median, rates, flops = steps_per_s(args.chunk, args.repeats)
        step_flops = flops if name == "library" else step_flops
        print(
            json.dumps(
                {
                    "variant": name,
                    "steps_per_s": round(median, 2),
                    "steps_per_s_runs": [round(r, 2) for r in rates],
                    "gflop_per_step": round(flops / 1e9, 3),
                }
            ),
            flush=True,
        )
    nets.mish = LIBRARY_MISH
    rate = max(matmul_gflops(256), matmul_gflops(1024))
    print(
        json.dumps(
            {
                "variant": "ceiling",
                "matmul_gflops": round(rate, 1),
                "gflop_per_step": round(step_flops / 1e9, 3),
                "max_steps_per_s_at_matmul_rate": round(rate * 1e9 / step_flops, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
