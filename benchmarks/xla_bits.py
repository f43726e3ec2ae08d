"""Bit fingerprints of XLA:CPU results, to find where two machines' builds part.

    python benchmarks/xla_bits.py [--flags "--xla_cpu_max_isa=AVX2" ...]

A dataset build reproduces bit for bit only where the compiled SAC update does
(docs/datasets.md "Reproducing a build"). This prints one JSON line per XLA flag set: the CPU
model and vector extensions, and a SHA-256 prefix of each probe's result — a long reduction, a
matrix product, elementwise tanh/exp, and 200 SAC updates of the builder's own `sac.update` on
fixed random batches. Run it on two machines and compare the lines: the first probe whose
hashes differ names the operation whose code differs, and a flag set whose hashes agree on both
is one that would make builds portable. Each flag set runs in its own process, since XLA reads
its flags once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

from startup import cpu_model

BASE_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
DEFAULT_FLAG_SETS = ["", "--xla_cpu_max_isa=AVX2", "--xla_cpu_max_isa=SSE4_2"]


def _digest(*arrays) -> str:
    import numpy as np

    blob = b"".join(np.ascontiguousarray(np.asarray(a)).tobytes() for a in arrays)
    return hashlib.sha256(blob).hexdigest()[:16]


def _sac_probe(updates: int) -> str:
    import jax
    import jax.numpy as jnp

    from diffrl.builder import sac

    config = sac.Config()
    obs_dim, action_dim = 11, 3  # Hopper's sizes
    state = sac.init(config, obs_dim, action_dim, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    step = jax.jit(lambda s, b: sac.update(config, s, b, -float(action_dim)))
    for _ in range(updates):
        key, *ks = jax.random.split(key, 5)
        batch = {
            "observations": jax.random.normal(ks[0], (config.batch_size, obs_dim)),
            "actions": jnp.tanh(jax.random.normal(ks[1], (config.batch_size, action_dim))),
            "rewards": jax.random.normal(ks[2], (config.batch_size,)),
            "next_observations": jax.random.normal(ks[3], (config.batch_size, obs_dim)),
            "terminals": jnp.zeros((config.batch_size,)),
        }
        state, _ = step(state, batch)
    return _digest(*jax.tree.leaves((state.actor, state.critic, state.log_alpha)))


def probes(sac_updates: int) -> dict[str, str]:
    """SHA-256 prefixes of each probe's result under this process's XLA flags."""
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.PRNGKey(1), (1_000_003,))
    a = jax.random.normal(jax.random.PRNGKey(2), (256, 257))
    b = jax.random.normal(jax.random.PRNGKey(3), (257, 255))
    return {
        "sum": _digest(jax.jit(lambda v: jnp.sum(v * 1.0001))(x)),
        "matmul": _digest(jax.jit(jnp.matmul)(a, b)),
        "tanh": _digest(jax.jit(jnp.tanh)(x)),
        "exp": _digest(jax.jit(lambda v: jnp.exp(v * 0.1))(x)),
        "sac_update": _sac_probe(sac_updates),
    }


def _cpu() -> dict[str, str]:
    from diffrl.versions import cpu_simd

    return {"cpu_model": cpu_model(), "cpu_simd": cpu_simd()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", nargs="*", default=DEFAULT_FLAG_SETS, help="XLA flag sets")
    parser.add_argument("--sac-updates", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(probes(args.sac_updates)))
        return
    for flags in args.flags:
        env = dict(os.environ, XLA_FLAGS=f"{BASE_FLAGS} {flags}".strip())
        cmd = [sys.executable, __file__, "--child", "--sac-updates", str(args.sac_updates)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(json.dumps({"kind": "xla_bits", "flags": flags, **_cpu(), **result}), flush=True)


if __name__ == "__main__":
    main()
