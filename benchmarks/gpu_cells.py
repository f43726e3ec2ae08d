"""Cells of a `diffrl bench` sweep trained on a lent GPU, each cell's seeds as one vmapped program.

A cell is one (algorithm, dataset, preset) with all its seeds: the sweep's own jobs
(`bench.make_jobs`, settings resolved as `diffrl bench` resolves them) trained as one vmapped
program by the runner of `diffrl bench --vmap-seeds` (`bench.run_group`), so the run directories
land in the sweep's layout (`WORK/runs/<dataset slug>/<algo>/seed<k>`). With
`--copy-to OUT` the three files that `diffrl bench --report` reads of each finished seed
(summary.json, metrics.jsonl, config.json; checkpoints stay behind, they are too large to bring
back from a device) are copied to `OUT/runs/...`; copied into a CPU sweep's `--out`, the sweep
skips those jobs and its report includes them. Finished seeds in WORK are skipped, interrupted
ones resumed (as the sweep does).

Prints one JSON line per cell: algorithm, dataset, each seed's status (trained, resumed, skipped
or failed with its error), wall seconds (training and evaluation of all seeds together) and each
seed's final score. On CPU it runs the same way (a vmapped group
costs about what its seeds cost one by one there; docs/bench.md).

    H=minari:diffrl/hopper-v5/medium-replay-v0,hopper-medium-replay-v2
    python benchmarks/gpu_cells.py --cell dql,$H --cell dtql,$H \
        --seeds 0,1,2 --steps 100000 --eval-every 10000 --eval-episodes 10 \
        --set dtql.pretrain_steps=5000 --work /tmp/cells --copy-to "$OUT"

docs/results/table-100k.md ("On a lent GPU") gives the device command that carries the datasets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from diffrl.bench.jobs import Job, make_jobs, run_group, split_overrides
from diffrl.settings import parse_assignments

BENCH_FILES = ("summary.json", "metrics.jsonl", "config.json")


def parse_cell(text: str) -> tuple[str, str, str | None]:
    """`ALGO,DATASET[,PRESET]`: commas, because dataset specs hold colons."""
    parts = text.split(",")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"--cell {text!r}: expected ALGO,DATASET[,PRESET]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def all_cell_jobs(args: argparse.Namespace) -> list[list[Job]]:
    """The sweep's jobs of each cell, every setting checked before anything is trained. `--set`
    is split over all the cells' algorithms as `diffrl bench` splits it over its `--algos`."""
    cells = [parse_cell(c) for c in args.cell]
    per_algo = split_overrides(parse_assignments(args.set), sorted({a for a, _, _ in cells}))
    seeds = [int(s) for s in args.seeds.split(",")]
    return [
        make_jobs(
            [algo],
            [dataset],
            seeds,
            args.steps,
            args.eval_every,
            args.eval_episodes,
            sets=per_algo[algo],
            preset=preset,
        )  # fmt: skip
        for algo, dataset, preset in cells
    ]


def copy_finished(jobs: list[Job], work: Path, dest: Path) -> list[str]:
    """Copy each finished seed's report files; a file already at the destination is never
    overwritten (it is someone's result): refused with its path."""
    copied = []
    for job in jobs:
        source, target = job.run_dir(work), job.run_dir(dest)
        if not (source / "summary.json").exists():
            continue
        clashes = [str(target / f) for f in BENCH_FILES if (target / f).exists()]
        if clashes:
            raise SystemExit(f"gpu_cells: not overwriting {', '.join(clashes)}")
        target.mkdir(parents=True, exist_ok=True)
        for name in BENCH_FILES:
            shutil.copy2(source / name, target / name)
        copied.append(source.name)
    return copied


def final_score(run_dir: Path) -> float | None:
    summary = run_dir / "summary.json"
    return json.loads(summary.read_text())["final"].get("score") if summary.exists() else None


def run_cell(jobs: list[Job], args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    statuses = run_group(jobs, str(args.work))
    line = {"algo": jobs[0].algo, "dataset": jobs[0].dataset, "preset": jobs[0].preset}
    line["status"] = {f"seed{j.seed}": s["status"] for j, s in zip(jobs, statuses, strict=True)}
    line["errors"] = sorted({s["error"] for s in statuses if "error" in s})
    line["wall_s"] = round(time.perf_counter() - start, 1)
    line["final_score"] = {f"seed{j.seed}": final_score(j.run_dir(args.work)) for j in jobs}
    if args.copy_to:
        line["copied"] = copy_finished(jobs, args.work, args.copy_to)
    return line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", action="append", required=True, help="ALGO,DATASET[,PRESET]")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--set", action="append", default=[], metavar="[ALGO.]KEY=VALUE")
    p.add_argument("--work", type=Path, required=True, help="where the cells' runs are trained")
    p.add_argument("--copy-to", type=Path, help="copy the report files of finished seeds here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for jobs in all_cell_jobs(args):
        print(json.dumps(run_cell(jobs, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
