"""Training steps/s and action latency, one JSON line per algorithm.

    python benchmarks/speed.py --algo dql [--batch 256 --obs 17 --act 6 --repeats 7]
    python benchmarks/speed.py --algo dql,dtql,diffcps --seeds 1,2,5,10

`--seeds`: the training rate of N seeds in one vmapped program (run.many, as `diffrl train
--seeds` runs them), per seed (`steps_per_s`) and for all seeds together (`agent_steps_per_s`).

Training: the library's own jitted `lax.scan` chunk (run.make_chunk_fn) on random device data of
`--rows` transitions (default 100 000), batches sampled inside the scan as in real runs; steps/s
is the median over `--repeats` timed chunks after one compile-and-warm-up call. Latency: one
jitted `act` call on a single state, timed to the result being ready on the host (median of many
calls), as a plain sample (`latency_ms_b1`), the same for a loaded policy whose parameters are
compiled into the call (`latency_ms_b1_loaded`, `diffrl.load_policy`) and with 50 candidates
ranked by the target critic (`latency_ms_k50`).

Agents with a pretraining phase (DTQL) get both rates: `steps_per_s` is the main phase (all
updates), `pretrain_steps_per_s` the pretraining updates; `--pretrain-wall` also times the whole
pretraining phase end to end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from startup import cpu_model

from diffrl import nets
from diffrl.acting import make_act_fn, make_fixed_act_fn
from diffrl.agents import get_agent
from diffrl.agents.api import ActionChoice, Batch, Spec
from diffrl.run import make_chunk_fn
from diffrl.run.many import make_group_chunk_fn, stack


def random_data(n: int, obs: int, act: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        observations=jnp.asarray(rng.standard_normal((n, obs), np.float32)),
        actions=jnp.asarray(rng.uniform(-1, 1, (n, act)).astype(np.float32)),
        rewards=jnp.asarray(rng.standard_normal(n).astype(np.float32)),
        next_observations=jnp.asarray(rng.standard_normal((n, obs), np.float32)),
        not_done=jnp.asarray((rng.uniform(size=n) > 0.01).astype(np.float32)),
    )


def time_training(module, cfg, spec, data, batch: int, chunk: int, repeats: int) -> list[float]:
    fn = make_chunk_fn(module, cfg, spec, batch, chunk)
    state = module.init(cfg, spec, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    state, m = fn(state, data, key)  # compile + warm up
    jax.block_until_ready(m)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, m = fn(state, data, key)
        jax.block_until_ready(m)
        rates.append(chunk / (time.perf_counter() - t0))
    return rates


def time_action(
    module, cfg, spec, obs_dim: int, calls: int, choice: ActionChoice, loaded: bool = False
) -> float:
    """Median wall time of the library's policy call on one state: `acting.make_act_fn` (the
    evaluations' call, the state an argument) or, `loaded`, `make_fixed_act_fn` (a loaded
    policy's call, `diffrl.load_policy`: the parameters compiled in)."""
    state = module.init(cfg, spec, jax.random.PRNGKey(0))
    if loaded:
        fixed = make_fixed_act_fn(module, cfg, spec, choice, state)
        act = lambda _, obs, key, index: fixed(obs, key, index)  # noqa: E731
    else:
        act = make_act_fn(module, cfg, spec, choice)
    return median_call_ms(lambda obs, key, index: act(state, obs, key, index), obs_dim, calls)


def median_call_ms(fn, obs_dim: int, calls: int) -> float:
    """Median wall time in ms of `fn(obs, key, index)` on one state, to the result on the host."""
    obs = jnp.zeros((1, obs_dim), jnp.float32)
    key = jax.random.PRNGKey(2)
    np.asarray(fn(obs, key, 0))  # compile
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        np.asarray(fn(obs, key, i + 1))
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def latency_part_fns(module, cfg, spec: Spec, state) -> dict:
    """The batch-1 call of a loaded DDPM policy and three calls that each do only part of its
    work, with the same signature and the same parameters compiled in: `call_floor` (a jitted
    call that does almost nothing: dispatch and transfer), `rng` (the key fold and the chain's
    normal draws), `denoiser_trunk` (the N denoiser trunk calls of the chain, no RNG)."""
    actor, a_dim, n = state.actor, spec.action_dim, cfg.n_steps

    def floor(obs, key, index):
        return obs[:, :a_dim] + (key[0] + index).astype(jnp.float32)

    def rng(obs, key, index):
        draws = jax.random.normal(jax.random.fold_in(key, index), (n + 1, 1, a_dim))
        return draws.sum(0) + obs[:, :a_dim]

    def trunk(obs, key, index):
        x, features = obs[:, :a_dim], nets.denoiser_state_features(actor, obs, a_dim)
        for _ in range(n):
            x = nets.denoiser_trunk(actor, x, features)
        return x

    fixed = make_fixed_act_fn(module, cfg, spec, ActionChoice(), state)
    parts = {"call_floor": jax.jit(floor), "rng": jax.jit(rng), "denoiser_trunk": jax.jit(trunk)}
    return {**parts, "loaded": fixed}


def trunk_flops(actor, action_dim: int, n_steps: int) -> int:
    """Multiply-adds ×2 of the chain's N trunk calls on one row (the first layer's x rows only)."""
    trunk = actor["trunk"]
    shapes = [trunk[f"l{i}"]["w"].shape for i in range(len(trunk))]
    per_call = 2 * action_dim * shapes[0][1] + sum(2 * i * o for i, o in shapes[1:])
    return n_steps * per_call


def latency_parts(algo: str, args: argparse.Namespace) -> dict:
    """Where a loaded DDPM policy's batch-1 call spends its time: each part's median over
    `--latency-rounds` alternating rounds (ms), the rest, and the trunk's arithmetic rate."""
    module = get_agent(algo)
    cfg, spec = module.Config(), Spec(args.obs, args.act, 1.0)
    state = module.init(cfg, spec, jax.random.PRNGKey(0))
    fns = latency_part_fns(module, cfg, spec, state)
    rounds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.latency_rounds):
        for name, fn in fns.items():
            rounds[name].append(median_call_ms(fn, args.obs, args.calls))
    ms = {name: statistics.median(v) for name, v in rounds.items()}
    flops = trunk_flops(state.actor, args.act, cfg.n_steps)
    trunk_only = ms["denoiser_trunk"] - ms["call_floor"]
    rate = flops / (trunk_only * 1e-3) / 1e9 if trunk_only > 0 else None
    return {
        "algo": algo, "kind": "latency_parts", "calls": args.calls,
        "ms": {name: round(v, 4) for name, v in ms.items()},
        "ms_rounds": {name: [round(x, 4) for x in v] for name, v in rounds.items()},
        "rest_ms": round(ms["loaded"] - ms["rng"] - ms["denoiser_trunk"] + ms["call_floor"], 4),
        "trunk_mflop": round(flops / 1e6, 3),
        "trunk_gflop_per_s": None if rate is None else round(rate, 1),
        "cpu": cpu_model(),
    }  # fmt: skip


def pretraining_rates(module, cfg, spec: Spec, data: Batch, args: argparse.Namespace) -> dict:
    """Pretraining steps/s (median of timed chunks) and, with --pretrain-wall, the wall time of
    all `cfg.pretrain_steps` pretraining updates run through the library's chunk function."""
    rates = time_training(module, cfg, spec, data, args.batch, args.chunk, args.repeats)
    out = {
        "pretrain_steps_per_s": round(statistics.median(rates), 2),
        "pretrain_steps_per_s_runs": [round(r, 2) for r in rates],
        "pretrain_steps": cfg.pretrain_steps,
    }
    if args.pretrain_wall:
        chunk = 1000 if cfg.pretrain_steps % 1000 == 0 else args.chunk
        fn = make_chunk_fn(module, cfg, spec, args.batch, chunk)
        state = module.init(cfg, spec, jax.random.PRNGKey(0))
        t0 = time.perf_counter()  # compile included, as a user's run pays it
        for _ in range(cfg.pretrain_steps // chunk):
            state, m = fn(state, data, jax.random.PRNGKey(1))
        jax.block_until_ready(m)
        out["pretrain_wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def measure(algo: str, args: argparse.Namespace) -> dict:
    module = get_agent(algo)
    cfg = module.Config()
    spec = Spec(args.obs, args.act, 1.0)
    data = random_data(args.rows, args.obs, args.act)
    result = {"algo": algo}
    pretrain = getattr(cfg, "pretrain_steps", 0)
    if pretrain:
        # a run's first `pretrain_steps` updates skip the policy (DTQL): time both phases, the
        # main phase as `steps_per_s`
        result.update(pretraining_rates(module, cfg, spec, data, args))
        cfg = dataclasses.replace(cfg, pretrain_steps=0)
    rates = time_training(module, cfg, spec, data, args.batch, args.chunk, args.repeats)
    result = {
        **result,
        "steps_per_s": round(statistics.median(rates), 2),
        "steps_per_s_runs": [round(r, 2) for r in rates],
        "latency_ms_b1": round(
            time_action(module, cfg, spec, args.obs, args.calls, ActionChoice()), 4
        ),
        "latency_ms_b1_loaded": round(
            time_action(module, cfg, spec, args.obs, args.calls, ActionChoice(), loaded=True), 4
        ),
    }
    if module.q_value is not None:
        ranked = ActionChoice(selection="softmax", candidates=50)
        result["latency_ms_k50"] = round(
            time_action(module, cfg, spec, args.obs, args.calls, ranked), 4
        )
    result.update(
        batch=args.batch,
        rows=args.rows,
        obs_dim=args.obs,
        action_dim=args.act,
        n_steps=getattr(cfg, "n_steps", None),
        chunk=args.chunk,
        backend=jax.default_backend(),
        devices=str(jax.devices()[0]),
        cpu_count=os.cpu_count(),
        jax=jax.__version__,
        machine=platform.machine(),
    )
    return result


def measure_seeds(algo: str, seeds: int, args: argparse.Namespace) -> dict:
    """Training rate of `seeds` seeds in one vmapped program (run.many, as `--seeds` trains)."""
    module = get_agent(algo)
    cfg = module.Config()
    if getattr(cfg, "pretrain_steps", 0):
        cfg = dataclasses.replace(cfg, pretrain_steps=0)  # the main phase, as `steps_per_s`
    spec = Spec(args.obs, args.act, 1.0)
    data = random_data(args.rows, args.obs, args.act)
    fn = make_group_chunk_fn(module, cfg, spec, args.batch, args.chunk)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = stack([module.init(cfg, spec, k) for k in keys])
    state, m = fn(state, data, keys)  # compile + warm up
    jax.block_until_ready(m)
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state, m = fn(state, data, keys)
        jax.block_until_ready(m)
        rates.append(args.chunk / (time.perf_counter() - t0))
    per_seed = statistics.median(rates)
    return {
        "algo": algo,
        "seeds": seeds,
        "steps_per_s": round(per_seed, 2),  # each seed's steps per second
        "agent_steps_per_s": round(seeds * per_seed, 2),  # all seeds together
        "steps_per_s_runs": [round(r, 2) for r in rates],
        "batch": args.batch,
        "chunk": args.chunk,
        "backend": jax.default_backend(),
        "devices": str(jax.devices()[0]),
        "cpu": cpu_model(),
        "jax": jax.__version__,
    }


def measure_baseline(args: argparse.Namespace) -> dict:
    """The plain jitted step of naive_dql.py: one dispatch and one host batch per step."""
    import naive_dql

    host = random_data(args.rows, args.obs, args.act)
    arrays = [np.asarray(x) for x in host]
    init, step = naive_dql.make_step(args.obs, args.act)
    state = init(jax.random.PRNGKey(0))
    batches = naive_dql.host_batches(arrays, args.batch)
    key = jax.random.PRNGKey(1)
    for i in range(3):  # compile + warm up
        state = step(state, next(batches), jax.random.fold_in(key, i))
    jax.block_until_ready(state)
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for i in range(args.chunk):
            state = step(state, next(batches), jax.random.fold_in(key, r * args.chunk + i))
        jax.block_until_ready(state)
        rates.append(args.chunk / (time.perf_counter() - t0))
    return {
        "algo": "dql-naive-baseline",
        "steps_per_s": round(statistics.median(rates), 2),
        "steps_per_s_runs": [round(x, 2) for x in rates],
        "batch": args.batch,
        "obs_dim": args.obs,
        "action_dim": args.act,
        "n_steps": 5,
    }


def latency_rounds(algo: str, args: argparse.Namespace) -> dict:
    """Batch-1 latency of the evaluation's call and of a loaded policy's, alternating."""
    module = get_agent(algo)
    cfg, spec = module.Config(), Spec(args.obs, args.act, 1.0)
    rounds = []
    for _ in range(args.latency_rounds):
        plain = time_action(module, cfg, spec, args.obs, args.calls, ActionChoice())
        loaded = time_action(module, cfg, spec, args.obs, args.calls, ActionChoice(), loaded=True)
        rounds.append([round(plain, 4), round(loaded, 4)])
    return {"algo": algo, "kind": "latency_rounds", "calls": args.calls,
            "rounds_ms_b1_eval_loaded": rounds, "cpu": cpu_model()}  # fmt: skip


def make_parser() -> argparse.ArgumentParser:
    """The command line; benchmarks/gpu.py takes its defaults too."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--algo", default="dql", help="comma-separated algorithms")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--obs", type=int, default=17)
    p.add_argument("--act", type=int, default=6)
    p.add_argument("--rows", type=int, default=100_000, help="transitions of the random data")
    p.add_argument("--chunk", type=int, default=200, help="updates per jitted call")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--calls", type=int, default=2000, help="act calls for the latency median")
    p.add_argument(
        "--pretrain-wall",
        action="store_true",
        help="also time an agent's whole pretraining phase (DTQL: 50 000 updates)",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also time the plain jitted DQL step of benchmarks/naive_dql.py",
    )
    p.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seed counts (e.g. 1,2,5,10): time N seeds in one vmapped program",
    )
    p.add_argument(
        "--latency-rounds",
        type=int,
        default=0,
        help="only time batch-1 actions: the evaluation's and a loaded policy's call, "
        "alternating in one process, this many rounds",
    )
    p.add_argument(
        "--latency-parts",
        action="store_true",
        help="with --latency-rounds: split a loaded DDPM policy's batch-1 call (dql, diffcps, "
        "diffbc) into the call floor, the RNG and the denoiser trunk",
    )
    return p


def main() -> None:
    args = make_parser().parse_args()
    if args.latency_rounds:
        measure_latency = latency_parts if args.latency_parts else latency_rounds
        for algo in args.algo.split(","):
            print(json.dumps(measure_latency(algo.strip(), args)), flush=True)
        return
    if args.seeds:
        for algo in args.algo.split(","):
            for n in (int(x) for x in args.seeds.split(",")):
                print(json.dumps(measure_seeds(algo.strip(), n, args)), flush=True)
        return
    if args.baseline:
        print(json.dumps(measure_baseline(args)), flush=True)
    for algo in args.algo.split(","):
        print(json.dumps(measure(algo.strip(), args)), flush=True)


if __name__ == "__main__":
    main()
