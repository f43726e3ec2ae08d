"""Write a parity sweep's dataset (a build's `medium` level) from the behaviour run's medium
snapshot as soon as that snapshot is saved, so the sweep starts before a 1M-step SAC run ends.

    diffrl data build --env Hopper-v5 --sac-steps 1000000 --eval-every 20000 \\
        --ref-episodes 20 --out ~/diffrl-work/d4rl-grade --quiet &        # the build itself
    python benchmarks/parity_data.py --env Hopper-v5 --sac-steps 1000000 --eval-every 20000 \\
        --build-out ~/diffrl-work/d4rl-grade --snapshot-step 100000 --ref-min 16.2 \\
        --ref-max 3222.8 --out ~/diffrl-work/early \\
        --expect-sha256 566b3371910e352b8fc679fc2dbc2a52255b0d5b05a408a258fc67ae43591b0c

A build's medium rule needs the final return, so it picks its snapshot only when SAC has
finished; a rebuild that follows a known evaluation curve (docs/datasets.md records them) knows
the step earlier. The level is collected by the builder's own code (the snapshot, the level's
collection seed, the same rollouts) and written under the build's dataset id in another Minari
root (`--out`), so the finished build writes its own copy undisturbed. `--expect-sha256` is what
makes the shortcut safe: the script prints the file's SHA-256 and exits 1 unless it is the
expected one, and the sweeps' own `--dataset-sha256` refuses any other file. The reference
returns only enter normalised scores (parity compares raw returns); pass the build's recorded
ones. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def write_medium(args: argparse.Namespace, **build: Any) -> dict[str, Any]:
    """`build`: the build's settings that its command line does not take (env_kwargs,
    random_steps, eval_episodes, n_envs: tests build tiny datasets with them)."""
    from diffrl.builder import recipe, store
    from diffrl.builder.envs import describe_env
    from diffrl.fileio import file_sha256

    info = describe_env(args.env, build.get("env_kwargs"))
    ds_id = store.dataset_id(info.env_id, "medium")
    out = args.out.expanduser().absolute()
    if store.read_metadata(out, ds_id) is not None:
        raise SystemExit(f"{store.dataset_dir(out, ds_id)}: expected no dataset, found one")
    episodes = recipe.snapshot_episodes(
        args.env,
        args.snapshot_step,
        out=args.build_out,
        sac_steps=args.sac_steps,
        seed=args.seed,
        transitions=args.transitions,
        eval_every=args.eval_every,
        **build,
    )
    refs = {"ref_min_score": args.ref_min, "ref_max_score": args.ref_max, "ref_episodes": 1}
    note = {
        "level": "medium",
        "policy": f"SAC snapshot at step {args.snapshot_step}, stochastic",
        "description": "A build's medium level, written from its snapshot before the build "
        "finished (benchmarks/parity_data.py); reference returns given by hand.",
        "snapshot_step": args.snapshot_step,
    }
    store.write_dataset(out, ds_id, episodes, info, refs, note)
    digest = file_sha256(store.main_data_file(out, ds_id))
    return {
        "dataset": f"minari:{ds_id}",
        "root": str(out),
        "transitions": sum(len(ep) for ep in episodes),
        "episodes": len(episodes),
        "sha256": digest,
        "expected": args.expect_sha256,
        "matches": args.expect_sha256 is None or digest == args.expect_sha256.lower(),
    }


def main(argv: list[str] | None = None, **build: Any) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True)
    p.add_argument("--sac-steps", type=int, required=True, help="the build's --sac-steps")
    p.add_argument("--eval-every", type=int, default=None, help="the build's --eval-every")
    p.add_argument("--seed", type=int, default=0, help="the build's --seed")
    p.add_argument("--transitions", type=int, default=1_000_000, help="the build's")
    p.add_argument("--build-out", type=Path, required=True, help="the build's --out")
    p.add_argument("--snapshot-step", type=int, required=True)
    p.add_argument("--ref-min", type=float, required=True)
    p.add_argument("--ref-max", type=float, required=True)
    p.add_argument("--out", type=Path, required=True, help="the Minari root to write to")
    p.add_argument("--expect-sha256", default=None, metavar="HEX")
    line = write_medium(p.parse_args(argv), **build)
    print(json.dumps(line), flush=True)
    return 0 if line["matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
