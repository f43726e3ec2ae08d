"""The prepared GPU run: one command, JSON lines, under 8 minutes on one GPU; installs nothing.

    pip install -e '.[cuda]'          # on a GPU machine that reaches a package index, or:
    python benchmarks/gpu_wheels.py   # on one that does not: wheels to carry (its docstring)
    python benchmarks/gpu.py --work /tmp/gpu
    python benchmarks/gpu.py --tiny --work /tmp/gpu-tiny     # seconds, on CPU (the test suite)

Lines, in order:
- `kind: machine`: JAX backend and device, CPU model (lscpu);
- `kind: train`: steps/s of dql, dtql (main phase), diffcps and fql at batch 256, for 1 seed and for
  10 seeds in one vmapped program (run.many, as `diffrl train --seeds` trains them), per seed and
  for all seeds together (`agent_steps_per_s`);
- `kind: latency`: Diffusion-QL's batch-1 action (plain sample and 50 ranked candidates), ms;
- `kind: run`: the wall time of a 100 000-step Diffusion-QL run with the hopper-medium-v2
  preset's evaluations (every 50 000 steps, 10 episodes), split into training (compilation
  included) and evaluation, on a Hopper-v5 random-policy dataset the script builds first (no
  SAC, seconds; the data's content does not change the cost of a step), and the 1M-step wall
  time this extrapolates to.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
from speed import make_parser, measure_seeds, time_action
from startup import cpu_model

import diffrl
from diffrl.agents import get_agent
from diffrl.agents.api import ActionChoice, Spec
from diffrl.builder import build_datasets
from diffrl.runlog import read_records

FULL = {"seeds": (1, 10), "batch": 256, "chunk": 1000, "repeats": 5, "calls": 500,
        "steps": 100_000, "eval_every": 50_000, "episodes": 10, "transitions": 200_000}  # fmt: skip
TINY = {"seeds": (2,), "batch": 32, "chunk": 5, "repeats": 2, "calls": 20,
        "steps": 20, "eval_every": 10, "episodes": 2, "transitions": 2_000}  # fmt: skip


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def train_lines(size: dict) -> None:
    args = make_parser().parse_args([])  # speed.py's defaults (sizes, data rows) ...
    args.batch, args.chunk, args.repeats = size["batch"], size["chunk"], size["repeats"]
    for algo in ("dql", "dtql", "diffcps", "fql"):
        for seeds in size["seeds"]:
            emit(kind="train", **measure_seeds(algo, seeds, args))


def latency_line(size: dict) -> None:
    agent = get_agent("dql")
    cfg, spec = agent.Config(), Spec(17, 6, 1.0)
    plain = time_action(agent, cfg, spec, 17, size["calls"], ActionChoice())
    ranked = ActionChoice(selection="softmax", candidates=50)
    emit(kind="latency", algo="dql", latency_ms_b1=plain,
         latency_ms_k50=time_action(agent, cfg, spec, 17, size["calls"], ranked))  # fmt: skip


def run_line(size: dict, work: Path) -> None:
    """A Diffusion-QL run with the preset's evaluations, timed end to end."""
    build_datasets("Hopper-v5", levels="random", transitions=size["transitions"], out=work,
                   ref_max_score=3234.3, ref_episodes=2, progress=False)  # fmt: skip
    os.environ["MINARI_DATASETS_PATH"] = str(work)  # where the dataset was just written
    settings = {"algo": "dql", "dataset": "minari:diffrl/hopper-v5/random-v0",
                "preset": "hopper-medium-v2", "steps": size["steps"],
                "eval_every": size["eval_every"], "eval_episodes": size["episodes"]}  # fmt: skip
    start = time.perf_counter()
    diffrl.fit(settings, work / "run", progress=False)
    wall = time.perf_counter() - start
    evals = [r for r in read_records(work / "run" / "metrics.jsonl") if r.get("kind") == "eval"]
    eval_s = sum(r["eval_seconds"] for r in evals)
    per_step = (wall - eval_s) / size["steps"]
    per_eval = eval_s / max(1, len(evals))
    emit(kind="run", algo="dql", steps=size["steps"], evaluations=len(evals),
         wall_s=round(wall, 1), train_s=round(wall - eval_s, 1), eval_s=round(eval_s, 1),
         extrapolated_1m_wall_min=round((1e6 * per_step + 20 * per_eval) / 60, 1))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="new directory for data and the run")
    p.add_argument("--tiny", action="store_true", help="seconds-long sizes, for CPU and tests")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=False)
    size = TINY if args.tiny else FULL
    emit(kind="machine", backend=jax.default_backend(), device=str(jax.devices()[0]),
         cpu=cpu_model(), jax=jax.__version__, tiny=args.tiny)  # fmt: skip
    train_lines(size)
    latency_line(size)
    run_line(size, args.work)


if __name__ == "__main__":
    main()
