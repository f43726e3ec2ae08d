"""The `diffrl` command: demo, train, eval, info."""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path
from typing import Any

from diffrl.checkpoint import CheckpointError
from diffrl.data import DatasetError


def _default_out(prefix: str) -> Path:
    return Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set key=value` agent overrides; values are Python literals (numbers, True, strings)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


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
    from diffrl import train

    if args.resume:
        run = train.open_run(Path(args.resume))
        print(f"resuming {args.resume}")
    else:
        if not args.dataset:
            raise SystemExit("diffrl train: --dataset SPEC is required (or --resume DIR)")
        given = {f: getattr(args, f) for f in TRAIN_FLAGS if getattr(args, f) is not None}
        agent = parse_set(args.set or [])
        base = train.RunConfig(algo=args.algo, dataset=args.dataset, agent=agent, **given)
        cfg = train.resolve_config(_dataset_name(base), base, explicit=set(given) | set(agent))
        out = Path(args.out) if args.out else _default_out(f"{args.algo}-{_slug(args.dataset)}")
        run = train.new_run(cfg, out)
        print(f"run directory {out}  (preset: {cfg.preset or 'none'}, mode: {cfg.mode})")
    summary = train.execute(run, progress=not args.quiet)
    print(json.dumps(_score_lines(summary), indent=2))
    return 0


def _dataset_name(cfg) -> str | None:
    if cfg.dataset.startswith("d4rl:"):
        return cfg.dataset.split(":", 1)[1]
    stem = Path(cfg.dataset).stem
    from diffrl.data import list_known_d4rl_names

    return stem if stem in list_known_d4rl_names() else None


def _slug(spec: str) -> str:
    return Path(spec.split(":", 1)[-1]).stem.replace("/", "_")


def _score_lines(summary: dict[str, Any]) -> dict[str, Any]:
    pick = ("step", "score", "score_std", "return_mean", "env_id")
    out = {}
    for rule in ("final", "best", "offline_selected"):
        entry = summary.get(rule)
        out[rule] = {k: entry[k] for k in pick if entry and k in entry} if entry else None
    return out


# -- eval -----------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from diffrl.policy import evaluate_run

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


# -- info -----------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from diffrl.train import RunConfig, prepare_dataset

    data = prepare_dataset(RunConfig(dataset=args.spec))
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


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffrl", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="Diffusion-QL on the 2-D bandit `corners` (no data needed)")
    d.add_argument("--out", help="run directory (default: runs/demo-<time>)")
    d.add_argument("--steps", type=int, default=None, help="gradient steps")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train an agent on an offline dataset")
    t.add_argument("--algo", default="dql", help="algorithm (dql)")
    t.add_argument("--dataset", help="d4rl:NAME | minari:ID | FILE.hdf5 | FILE.npz | bandit:TASK")
    t.add_argument("--env", help="gymnasium env id to evaluate in (default: the dataset's)")
    t.add_argument("--preset", help="per-task preset (default: the dataset's name if known)")
    t.add_argument("--steps", type=int, help="gradient steps (default: the preset's)")
    t.add_argument("--seed", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--eval-every", dest="eval_every", type=int, help="steps between evaluations")
    t.add_argument("--eval-episodes", dest="eval_episodes", type=int)
    t.add_argument("--top-k", dest="top_k", type=int, help="offline selection rank")
    t.add_argument("--reward-transform", dest="reward_transform")
    t.add_argument("--mode", choices=("reference", "clean"))
    t.add_argument("--steps-per-call", dest="steps_per_call", type=int)
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="agent setting override")
    t.add_argument("--out", help="run directory (must not hold a run)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a trained run's policy")
    e.add_argument("run_dir")
    e.add_argument("--which", default="final", choices=("final", "best", "offline_selected"))
    e.add_argument("--episodes", type=int)
    e.add_argument("--selection", choices=("none", "softmax", "argmax"))
    e.add_argument("--candidates", type=int)
    e.add_argument("--env", help="evaluate in another gymnasium env")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="what a dataset holds, after loading")
    i.add_argument("spec")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    from diffrl.train import RunError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DatasetError, RunError, CheckpointError, KeyError, FileExistsError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"diffrl {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
