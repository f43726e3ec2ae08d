"""`diffrl data build | list | export`: the dataset builder at the command line.

`add_data_parser(subparsers)` adds the `data` command to the `diffrl` parser; `run_data(args)`
runs it and returns the exit status (2 with one `diffrl data: error: ...` line for bad input).
"""

from __future__ import annotations

import argparse
import json
import sys

from diffrl.builder.defaults import DEFAULT_SAC_STEPS, DEFAULT_TRANSITIONS, LEVELS


def add_data_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `data` with its `build`, `list` and `export` subcommands; return the `data` parser."""
    data = subparsers.add_parser(
        "data",
        help="build D4RL-style datasets for Gymnasium envs, list and export them",
        description="Build D4RL-style datasets (SAC behaviour agent) as Minari datasets.",
    )
    sub = data.add_subparsers(dest="data_command", required=True)
    build = sub.add_parser("build", help="train SAC and write the dataset levels (resumable)")
    _add_build_arguments(build)
    listing = sub.add_parser("list", help="list the Minari datasets under a root")
    listing.add_argument("--out", default=None, help="Minari root (default: Minari's own)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    export = sub.add_parser("export", help="write a dataset as a D4RL-format HDF5 file")
    export.add_argument("id", help="dataset id, e.g. diffrl/hopper-v5/medium-v0")
    export.add_argument("path", help="output .hdf5 file")
    export.add_argument("--out", default=None, help="Minari root (default: Minari's own)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return data


def _add_build_arguments(build: argparse.ArgumentParser) -> None:
    build.add_argument("--env", default=None, help="Gymnasium id, e.g. Hopper-v5 (D4RL recipe)")
    _add_ogbench_arguments(build)
    build.add_argument(
        "--levels", default=",".join(LEVELS), help=f"comma-separated subset of {','.join(LEVELS)}"
    )
    build.add_argument(
        "--transitions",
        type=int,
        default=DEFAULT_TRANSITIONS,
        help="transitions per level (medium-replay: the buffer prefix; medium-expert: twice)",
    )
    build.add_argument(
        "--sac-steps", type=int, default=DEFAULT_SAC_STEPS, help="env steps of SAC training"
    )
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--out", default=None, help="Minari root (default: Minari's own)")
    build.add_argument(
        "--ref-episodes", type=int, default=100, help="episodes per reference return"
    )
    build.add_argument(
        "--ref-max-score",
        type=float,
        default=None,
        help="expert reference return to record when no agent is trained (--levels random)",
    )
    build.add_argument("--eval-every", type=int, default=None, help="env steps between evals")
    build.add_argument("--overwrite", action="store_true", help="replace existing datasets")
    build.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_ogbench_arguments(build: argparse.ArgumentParser) -> None:
    build.add_argument(
        "--ogbench",
        default=None,
        metavar="NAME",
        help="an OGBench dataset made by its scripted oracles, e.g. cube-single-play "
        "(instead of --env; written to --out, default $OGBENCH_DATASET_DIR or ~/.ogbench/data)",
    )
    build.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="--ogbench: training episodes (default: OGBench's)",
    )
    build.add_argument(
        "--workers", type=int, default=1, help="--ogbench: processes collecting episodes"
    )


def run_data(args: argparse.Namespace) -> int:
    # imported here, not at module level: they load numpy and h5py, which `diffrl --help`
    # (it builds this parser) does not need
    from diffrl.builder.envs import BuildError
    from diffrl.data.dataset import DatasetError

    try:
        if args.data_command == "build":
            return _build(args)
        if args.data_command == "list":
            return _list(args)
        return _export(args)
    except (BuildError, DatasetError) as exc:
        print(f"diffrl data: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.data_command != "build":
            raise
        print(
            "\ndiffrl data: interrupted; rerun the same command to continue from the last "
            "checkpoint (datasets already written are kept).",
            file=sys.stderr,
        )
        return 130


# the D4RL recipe's options, which an --ogbench build does not take
_D4RL_OPTIONS = (
    "levels",
    "transitions",
    "sac_steps",
    "ref_episodes",
    "ref_max_score",
    "eval_every",
)


def _build(args: argparse.Namespace) -> int:
    from diffrl.builder.envs import BuildError

    if (args.env is None) == (args.ogbench is None):
        raise BuildError("data build: expected exactly one of --env ID or --ogbench NAME.")
    if args.ogbench is not None:
        return _build_ogbench(args)
    if args.episodes is not None or args.workers != 1:
        raise BuildError("--episodes, --workers: only for --ogbench builds.")
    return _build_d4rl(args)


def _build_ogbench(args: argparse.Namespace) -> int:
    from diffrl.builder.envs import BuildError
    from diffrl.builder.ogbench_gen import build_ogbench

    defaults = _build_defaults()
    given = [f"--{k.replace('_', '-')}" for k in _D4RL_OPTIONS if getattr(args, k) != defaults[k]]
    if given:
        raise BuildError(f"{', '.join(given)}: not used by --ogbench builds (drop them).")
    result = build_ogbench(
        args.ogbench, args.out, episodes=args.episodes, seed=args.seed,
        overwrite=args.overwrite, progress=not args.quiet, workers=args.workers,
    )  # fmt: skip
    state = f"written in {result.seconds:.0f} s" if result.written else "kept (already built)"
    print(f"{result.train}: {result.transitions} rows, {state}; validation split {result.val}")
    return 0


def _build_defaults() -> dict:
    parser = argparse.ArgumentParser()
    _add_build_arguments(parser)
    return vars(parser.parse_args([]))


def _build_d4rl(args: argparse.Namespace) -> int:
    from diffrl.builder.recipe import build_datasets

    results = build_datasets(
        args.env,
        levels=args.levels,
        transitions=args.transitions,
        out=args.out,
        sac_steps=args.sac_steps,
        seed=args.seed,
        overwrite=args.overwrite,
        ref_episodes=args.ref_episodes,
        eval_every=args.eval_every,
        progress=not args.quiet,
        ref_max_score=args.ref_max_score,
    )
    for r in results:
        state = "written" if r.written else "kept (already built)"
        print(f"{r.dataset_id}: {r.transitions} transitions, {r.episodes} episodes, {state}")
    return 0


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _list(args: argparse.Namespace) -> int:
    from diffrl.builder.store import list_datasets

    rows = list_datasets(args.out)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no datasets")
        return 0
    head = ("id", "level", "env", "transitions", "episodes", "ref_min", "ref_max", "size")
    table = [head] + [
        (
            r["id"],
            r["level"] or "-",
            r["env_id"] or "-",
            str(r["transitions"]),
            str(r["episodes"]),
            _fmt(r["ref_min_score"]),
            _fmt(r["ref_max_score"]),
            _human_bytes(r["bytes"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _export(args: argparse.Namespace) -> int:
    from diffrl.builder.store import export_hdf5

    path = export_hdf5(args.id, args.path, root=args.out, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m diffrl.builder.cli data ...` until `diffrl data` is wired into diffrl.cli."""
    parser = argparse.ArgumentParser(prog="diffrl")
    add_data_parser(parser.add_subparsers(dest="command", required=True))
    return run_data(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
