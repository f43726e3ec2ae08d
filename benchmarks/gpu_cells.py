"""Cells of a `diffrl bench` sweep trained on a lent GPU, each cell's seeds as one vmapped program.

A cell is one (algorithm, dataset, preset) with all its seeds: `diffrl train --seeds 0,1,2`, whose
run directories land in `diffrl bench`'s layout (`WORK/runs/<dataset slug>/<algo>/seed<k>`). With
`--copy-to OUT` the three files that `diffrl bench --report` reads of each finished seed
(summary.json, metrics.jsonl, config.json; checkpoints stay behind, they are too large to bring
back from a device) are copied to `OUT/runs/...`; copied into a CPU sweep's `--out`, the sweep
skips those jobs and its report includes them. A cell already finished in WORK is skipped, an
interrupted one resumed (`diffrl train --resume`).

Prints one JSON line per cell: algorithm, dataset, seeds, wall seconds (training and evaluation of
all seeds together) and each seed's final score. On CPU it runs the same way (a vmapped group
costs about what its seeds cost one by one there; docs/bench.md).

    H=minari:diffrl/hopper-v5/medium-replay-v0,hopper-medium-replay-v2
    python benchmarks/gpu_cells.py --cell dql,$H --cell dtql,$H \
        --seeds 0,1,2 --steps 100000 --eval-every 10000 --eval-episodes 10 \
        --set dtql.pretrain_steps=5000 --work /tmp/cells --copy-to "$OUT"

docs/results/table-100k.md ("On a lent GPU") gives the device command that carries the datasets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

from diffrl.names import dataset_slug

BENCH_FILES = ("summary.json", "metrics.jsonl", "config.json")


def parse_cell(text: str) -> tuple[str, str, str | None]:
    """`ALGO,DATASET[,PRESET]`: commas, because dataset specs hold colons."""
    parts = text.split(",")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit(f"--cell {text!r}: expected ALGO,DATASET[,PRESET]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def cell_sets(sets: list[str], algo: str) -> list[str]:
    """`--set algo.key=v` applies to that algorithm only (as in `diffrl bench`), `key=v` to all."""
    chosen = []
    for item in sets:
        key = item.split("=", 1)[0]
        if "." not in key:
            chosen.append(item)
        elif key.startswith(algo + "."):
            chosen.append(item[len(algo) + 1 :])
    return chosen


def train_argv(algo: str, dataset: str, preset: str | None, args: argparse.Namespace) -> list[str]:
    group = args.work / "runs" / dataset_slug(dataset) / algo
    if group.exists():  # an earlier call of this script: resume what is unfinished
        return ["train", "--resume", str(group), "--quiet"]
    argv = ["train", "--algo", algo, "--dataset", dataset, "--seeds", args.seeds]
    argv += ["--steps", str(args.steps), "--eval-every", str(args.eval_every)]
    argv += ["--eval-episodes", str(args.eval_episodes), "--out", str(group), "--quiet"]
    if preset:
        argv += ["--preset", preset]
    for item in cell_sets(args.set, algo):
        argv += ["--set", item]
    return argv


def copy_finished(group: Path, work: Path, dest: Path) -> list[str]:
    """Copy each finished seed's report files; a file already at the destination is never
    overwritten (it is someone's result): refused with its path."""
    copied = []
    for seed_dir in sorted(group.glob("seed*")):
        if not (seed_dir / "summary.json").exists():
            continue
        target = dest / seed_dir.relative_to(work)
        clashes = [str(target / f) for f in BENCH_FILES if (target / f).exists()]
        if clashes:
            raise SystemExit(f"gpu_cells: not overwriting {', '.join(clashes)}")
        target.mkdir(parents=True, exist_ok=True)
        for name in BENCH_FILES:
            shutil.copy2(seed_dir / name, target / name)
        copied.append(seed_dir.name)
    return copied


def final_scores(group: Path) -> dict[str, float | None]:
    scores = {}
    for seed_dir in sorted(group.glob("seed*")):
        summary = seed_dir / "summary.json"
        final = json.loads(summary.read_text())["final"] if summary.exists() else None
        scores[seed_dir.name] = None if final is None else final.get("score")
    return scores


def run_cell(cell: tuple[str, str, str | None], args: argparse.Namespace) -> dict:
    from diffrl.cli import main as diffrl_main

    algo, dataset, preset = cell
    group = args.work / "runs" / dataset_slug(dataset) / algo
    seeds = [s.strip() for s in args.seeds.split(",")]
    finished = all((group / f"seed{s}" / "summary.json").exists() for s in seeds)
    start, rc = time.perf_counter(), 0
    if not finished:
        argv = train_argv(algo, dataset, preset, args)
        args.work.mkdir(parents=True, exist_ok=True)
        with open(args.work / f"{dataset_slug(dataset)}-{algo}.log", "a") as log:
            with contextlib.redirect_stdout(log):  # train's summaries stay out of the JSON lines
                rc = diffrl_main(argv)
    line = {"algo": algo, "dataset": dataset, "preset": preset, "seeds": args.seeds}
    line["wall_s"] = round(time.perf_counter() - start, 1)
    line["skipped"], line["train_rc"] = finished, rc
    line["final_score"] = final_scores(group)
    if args.copy_to:
        line["copied"] = copy_finished(group, args.work, args.copy_to)
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
    cells = [parse_cell(c) for c in args.cell]  # all checked before anything is trained
    for cell in cells:
        print(json.dumps(run_cell(cell, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
