"""The `diffrl` command: demo, train, eval, export, info, bandit, bench, data."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Only light imports at module level: `diffrl --help`, `diffrl info` and `diffrl data list` must
# start without JAX, flax, optax or Ray; each command imports what it needs.
from diffrl.names import SELECTION_RULES
from diffrl.names import dataset_slug as slug

SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _default_out(prefix: str) -> Path:
    return Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def parse_set(items: list[str]) -> dict[str, str]:
    """`--set key=value` settings as raw strings; their types are checked by diffrl.settings."""
    from diffrl.settings import parse_assignments

    return parse_assignments(items)


# -- demo -----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from diffrl.demo import run_demo

    out = Path(args.out) if args.out else _default_out("demo")
    summary = run_demo(out, steps=args.steps, seed=args.seed, progress=not args.quiet)
    print(json.dumps({k: summary[k] for k in ("best_mode_share", "support_rate", "mode_shares")}))
    print(f"wrote {out / 'summary.json'} and {out / 'actions.png'}")
    return 0 if summary["passed"] else 1


# -- train ----------------------------------------------------------------------------------------
TRAIN_FLAGS = {
    "env": "env",
    "preset": "preset",
    "steps": "steps",
    "seed": "seed",
    "batch_size": "batch_size",
    "eval_every": "eval_every",
    "eval_episodes": "eval_episodes",
    "top_k": "top_k",
    "reward_transform": "reward_transform",
    "mode": "mode",
    "steps_per_call": "steps_per_call",
}


def cmd_train(args: argparse.Namespace) -> int:
    from diffrl import launch, run

    if args.resume:
        _refuse_flags_with_resume(args)
        group = launch.group_dirs(Path(args.resume))
        if group:
            runs = launch.resume_many(Path(args.resume), steps=args.steps)
            print(f"resuming {args.resume} (seeds {', '.join(str(r.cfg.seed) for r in runs)})")
            return _train_group(runs, args.quiet)
        train_run = launch.resume(Path(args.resume), steps=args.steps)
        print(f"resuming {args.resume}")
    else:
        cfg, out = _new_train_settings(args)
        if args.seeds:
            runs = launch.start_many(cfg, out, args.seeds)
            print(f"run directories {out}/seed*  (seeds {', '.join(map(str, args.seeds))}, "
                  f"preset: {cfg.preset or 'none'}, mode: {cfg.mode})")  # fmt: skip
            return _train_group(runs, args.quiet)
        train_run = launch.start(cfg, out)
        print(f"run directory {out}  (preset: {cfg.preset or 'none'}, mode: {cfg.mode})")
    summary = run.execute(train_run, progress=not args.quiet)
    print(json.dumps(_score_lines(summary), indent=2))
    return 0


def _new_train_settings(args: argparse.Namespace) -> tuple[Any, Path]:
    """The checked settings of a new run (or group) and its --out."""
    from diffrl import run

    if not args.dataset:
        raise SystemExit("diffrl train: --dataset SPEC is required (or --resume DIR)")
    if args.seeds and args.seed is not None:
        raise SystemExit("diffrl train: give --seed or --seeds, not both")
    given = {f: getattr(args, f) for f in TRAIN_FLAGS if getattr(args, f) is not None}
    algo = args.algo or "dql"
    values = {"algo": algo, "dataset": args.dataset, **given, **parse_set(args.set or [])}
    cfg = run.resolve(values, "diffrl train")  # every setting checked before any file
    return cfg, Path(args.out) if args.out else _default_out(f"{algo}-{slug(args.dataset)}")


def _train_group(runs: list, quiet: bool) -> int:
    from diffrl.run.many import execute_many

    summaries = execute_many(runs, progress=not quiet)
    lines = {f"seed{r.cfg.seed}": _score_lines(s) for r, s in zip(runs, summaries, strict=True)}
    print(json.dumps(lines, indent=2))
    return 0


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, found {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct non-negative seeds, found {text!r}")
    return seeds


def _refuse_flags_with_resume(args: argparse.Namespace) -> None:
    """A resumed run keeps the settings of its config.json; only --steps (to extend it) and
    --quiet apply. Any other flag is refused by name rather than ignored."""
    named = {"algo": "--algo", "dataset": "--dataset", "set": "--set", "out": "--out"}
    named |= {"seeds": "--seeds"}
    named |= {f: "--" + f.replace("_", "-") for f in TRAIN_FLAGS if f != "steps"}
    given = sorted(flag for field, flag in named.items() if getattr(args, field, None))
    if given:
        raise SystemExit(
            f"diffrl train: --resume continues with the settings in {args.resume}/config.json; "
            f"{', '.join(given)} would not apply (only --steps, to extend the run, and --quiet do)"
        )


def _score_lines(summary: dict[str, Any]) -> dict[str, Any]:
    pick = ("step", "score", "score_std", "return_mean", "env_id")
    out = {}
    for rule in SELECTION_RULES:
        entry = summary.get(rule)
        out[rule] = {k: entry[k] for k in pick if entry and k in entry} if entry else None
    return out


# -- eval -----------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from diffrl.policy import evaluate_run

    if Path(args.run_dir).is_file():
        from diffrl.export import evaluate_exported

        given = [f for f, v in (("--which", args.which != "final"), ("--selection",
                 args.selection), ("--candidates", args.candidates)) if v]  # fmt: skip
        if given:  # the exported file holds one checkpoint and one action choice
            raise SystemExit(f"diffrl eval: {', '.join(given)} would not apply to an exported "
                             "policy (export again with other options)")  # fmt: skip

        result = evaluate_exported(Path(args.run_dir), episodes=args.episodes, env=args.env)
        print(json.dumps({k: v for k, v in result.items() if k != "returns"}, indent=2))
        return 0
    result = evaluate_run(
        Path(args.run_dir),
        which=args.which,
        episodes=args.episodes,
        selection=args.selection,
        candidates=args.candidates,
        env=args.env,
    )
    print(json.dumps({k: v for k, v in result.items() if k != "returns"}, indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from diffrl.export import export_policy

    out, sidecar = export_policy(Path(args.run_dir), Path(args.out), args.which, args.plain)
    info = json.loads(sidecar.read_text())
    print(f"wrote {out} and {sidecar.name}: {info['algo']} step {info['step']} ({info['which']}), "
          f"{info['acts_by']}")  # fmt: skip
    return 0


# -- info -----------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from diffrl.launch import load_data

    data = load_data(args.spec)
    info = data.summary()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        print(f"{key:<{width}}  {value}")
    return 0


# -- bandit ---------------------------------------------------------------------------------------
def cmd_bandit(args: argparse.Namespace) -> int:
    from diffrl.bandits import suite

    out = Path(args.out)
    progress = not args.quiet
    if args.all:
        suite.run_all(out, args.steps, args.seed, progress)
    else:
        if not args.task:
            raise SystemExit("diffrl bandit: give --task TASK (or --all)")
        n_values = [int(n) for n in args.n_steps.split(",")] if args.n_steps else []
        chosen = suite.variants([a.strip() for a in args.algos.split(",")], n_values)
        suite.run_task(args.task, chosen, out, args.steps, args.seed, progress)
    where = out if args.all else out / suite.canonical_task(args.task)
    print(f"wrote figure.png, metrics.md and metrics.json under {where}")
    return 0


# -- bench ----------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from diffrl import bench

    algos = _csv(args.algos)
    datasets = _csv(args.datasets)
    seeds = [int(s) for s in _csv(args.seeds)]
    jobs = bench.make_jobs(
        algos, datasets, seeds, args.steps, args.eval_every, args.eval_episodes, args.mode,
        parse_set(args.set or []), _presets(args.preset, len(datasets)),
    )  # fmt: skip
    print(f"{len(jobs)} jobs ({len(algos)} algorithms x {len(datasets)} datasets x "
          f"{len(seeds)} seeds) -> {args.out}")  # fmt: skip
    try:
        rows = bench.bench(jobs, Path(args.out), algos, datasets, args.address,
                           args.cpus_per_job, vmap_seeds=args.vmap_seeds,
                           report_only=args.report)  # fmt: skip
    except bench.NoSweepError as exc:  # only --report raises it: a mistyped --out
        raise SystemExit(f"diffrl bench --report: {exc}") from None
    failed = sum(r["status"] == "failed" for r in rows)
    finished = sum(r["status"] == "ok" for r in rows)
    print(f"wrote {Path(args.out) / 'results.md'} and results.csv; {finished} of {len(rows)} "
          f"job(s) finished, {failed} failed")  # fmt: skip
    return 1 if failed else 0


def _presets(text: str | None, n: int) -> list[str | None] | None:
    """One preset for all datasets, or a comma-separated list with one per dataset."""
    if text is None:
        return None
    names = _csv(text)
    return names * n if len(names) == 1 else names


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffrl", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    _add_demo_parser(sub)
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_export_parser(sub)
    _add_bandit_parser(sub)
    _add_bench_parser(sub)
    _add_data_parser(sub)
    _add_info_parser(sub)
    return p


def _add_demo_parser(sub: SubParsers) -> None:
    d = sub.add_parser("demo", help="Diffusion-QL on the 2-D bandit `corners` (no data needed)")
    d.add_argument("--out", help="run directory (default: runs/demo-<time>)")
    d.add_argument("--steps", type=int, default=None, help="gradient steps")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)


def _add_train_parser(sub: SubParsers) -> None:
    t = sub.add_parser("train", help="train an agent on an offline dataset")
    t.add_argument("--algo", help="algorithm (default: dql)")
    t.add_argument("--dataset", help="d4rl:NAME | minari:ID | FILE.hdf5 | FILE.npz | bandit:TASK")
    t.add_argument("--env", help="gymnasium env id to evaluate in (default: the dataset's)")
    t.add_argument("--preset", help="per-task preset (default: the dataset's name if known)")
    t.add_argument("--steps", type=int, help="gradient steps (default: the preset's)")
    t.add_argument("--seed", type=int)
    t.add_argument(
        "--seeds",
        type=_seed_list,
        help="comma-separated seeds trained together as one vmapped program; --out then holds "
        "one run directory per seed (seed0, seed1, ...)",
    )
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--eval-every", dest="eval_every", type=int, help="steps between evaluations")
    t.add_argument("--eval-episodes", dest="eval_episodes", type=int)
    t.add_argument("--top-k", dest="top_k", type=int, help="offline selection rank")
    t.add_argument("--reward-transform", dest="reward_transform")
    t.add_argument("--mode", choices=("reference", "clean"))
    t.add_argument("--steps-per-call", dest="steps_per_call", type=int)
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="agent setting override")
    t.add_argument("--out", help="run directory (must not hold a run)")
    t.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR (with --steps: extend it)"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)


def _add_eval_parser(sub: SubParsers) -> None:
    e = sub.add_parser("eval", help="evaluate a trained run's policy (or an exported policy)")
    e.add_argument("run_dir", help="a run directory, or a file written by diffrl export")
    e.add_argument("--which", default="final", choices=SELECTION_RULES)
    e.add_argument("--episodes", type=int)
    e.add_argument("--selection", choices=("none", "softmax", "argmax"))
    e.add_argument("--candidates", type=int)
    e.add_argument("--env", help="evaluate in another gymnasium env")
    e.set_defaults(func=cmd_eval)


def _add_export_parser(sub: SubParsers) -> None:
    x = sub.add_parser(
        "export", help="write a run's policy as a jax.export file (runs without diffrl)"
    )
    x.add_argument("run_dir")
    x.add_argument("--which", default="final", choices=SELECTION_RULES)
    x.add_argument("--out", required=True, help="file to write, e.g. policy.jaxexport (+ .json)")
    x.add_argument(
        "--plain", action="store_true", help="plain sampling instead of the run's candidate ranking"
    )
    x.set_defaults(func=cmd_export)


def _add_bandit_parser(sub: SubParsers) -> None:
    b = sub.add_parser(
        "bandit", help="train algorithms on a 2-D bandit: figure grid and metrics table"
    )
    b.add_argument(
        "--task", help="corners | cross | grid25-far|near|hard | swissroll-near|far | circle"
    )
    b.add_argument("--algos", default="dql", help="comma-separated algorithms (default: dql)")
    b.add_argument("--n-steps", dest="n_steps", help="comma-separated N: one variant per N")
    b.add_argument("--steps", type=int, help="gradient steps (default: per algorithm)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default="runs/bandits", help="output directory (default runs/bandits)")
    b.add_argument("--all", action="store_true", help="run the papers' bandit experiments")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_bandit)


def _add_bench_parser(sub: SubParsers) -> None:
    r = sub.add_parser("bench", help="algorithm x dataset x seed runs on Ray, with result tables")
    r.add_argument("--algos", required=True, help="comma-separated algorithms")
    r.add_argument("--datasets", required=True, help="comma-separated dataset specs")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--steps", type=int, help="gradient steps per run (default: the presets')")
    r.add_argument("--eval-every", dest="eval_every", type=int)
    r.add_argument("--eval-episodes", dest="eval_episodes", type=int)
    r.add_argument("--mode", choices=("reference", "clean"))
    r.add_argument(
        "--preset", help="preset name (or one per dataset, comma-separated) for the algorithms "
        "that have it"
    )  # fmt: skip
    r.add_argument("--set", action="append", metavar="[ALGO.]KEY=VALUE", help="agent setting")
    r.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    r.add_argument("--cpus-per-job", dest="cpus_per_job", type=float, default=1.0)
    r.add_argument(
        "--vmap-seeds", dest="vmap_seeds", action="store_true",
        help="train the seeds of each algorithm and dataset as one vmapped program (one task "
        "per group; on a GPU N seeds cost little more than one)",
    )  # fmt: skip
    r.add_argument(
        "--report", action="store_true",
        help="train nothing: write the tables from the jobs that have finished so far and list "
        "the others (safe while the sweep runs)",
    )  # fmt: skip
    r.add_argument("--out", default="runs/bench", help="output directory (default runs/bench)")
    r.set_defaults(func=cmd_bench)


def _add_data_parser(sub: SubParsers) -> None:
    # builder.cli imports only the builder's light defaults module at its top
    from diffrl.builder.cli import add_data_parser, run_data

    add_data_parser(sub).set_defaults(func=run_data)


def _add_info_parser(sub: SubParsers) -> None:
    i = sub.add_parser("info", help="what a dataset holds, after loading")
    i.add_argument("spec")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from diffrl.errors import DivergedError, Interrupted

    in_main = threading.current_thread() is threading.main_thread()  # signals need it
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        return args.func(args)
    except Interrupted as exc:  # Ctrl-C or SIGTERM during training: state stays resumable
        print(f"diffrl {args.command}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"diffrl {args.command}: interrupted", file=sys.stderr)
        return 130
    except DivergedError as exc:
        print(f"diffrl {args.command}: error: {exc}", file=sys.stderr)
        return 3
    except _reported_errors() as exc:  # evaluated only once an exception is raised
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"diffrl {args.command}: error: {msg}", file=sys.stderr)
        return 2
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM ends a command the way Ctrl-C does (the loop turns it into `Interrupted`)."""
    raise KeyboardInterrupt


def _reported_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one line: bad input, not bugs. Looked up only after a failure so
    that the commands which never import the run package (and JAX) do not pay for it."""
    from diffrl.data.dataset import DatasetError
    from diffrl.errors import CheckpointError, EnvError
    from diffrl.settings import SettingsError

    errors: list[type[Exception]] = [
        DatasetError, CheckpointError, EnvError, SettingsError, KeyError, FileExistsError
    ]  # fmt: skip
    run = sys.modules.get("diffrl.run.directory")  # a RunError comes only from an imported run
    if run is not None:
        errors.append(run.RunError)
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
