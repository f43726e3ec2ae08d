"""Two fixed-seed runs through the command line, printed as JSON lines for a before/after diff.

A refactor of the core must not change what a run computes. This script runs `diffrl demo` at a
reduced budget and a tiny Diffusion-QL run on a Hopper-v5 dataset it writes itself (random
actions, fixed seed), then prints every number the runs produced: each metrics record (timing
fields dropped) and the summary. Run it on the same machine before and after a change and diff
the output; on CPU the two must be identical.

    python benchmarks/fixed_seed_runs.py --work /tmp/fixed-before > before.jsonl
    python benchmarks/fixed_seed_runs.py --work /tmp/fixed-after > after.jsonl
    python benchmarks/fixed_seed_runs.py --compare before.jsonl after.jsonl

`--compare` matches records by position and numbers by value, so renamed metrics still compare.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from diffrl.data.arrays import TRANSITION_KEYS

TIMING = {"steps_per_s", "eval_seconds", "time", "elapsed", "wall", "eta"}


def hopper_dataset(path: Path, transitions: int = 2000, seed: int = 0) -> None:
    """Random-action Hopper-v5 rollouts in the D4RL layout, with reference returns."""
    import gymnasium as gym

    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in TRANSITION_KEYS}
    obs, _ = env.reset(seed=seed)
    while len(rows["rewards"]) < transitions:
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        nxt, rew, term, trunc, _ = env.step(action)
        for key, value in zip(rows, (obs, action, rew, nxt, term, trunc), strict=True):
            rows[key].append(value)
        obs = nxt if not (term or trunc) else env.reset()[0]
    arrays = {
        k: np.asarray(v, np.float32 if k not in ("terminals", "timeouts") else bool)
        for k, v in rows.items()
    }
    np.savez(
        path,
        **arrays,
        env_id=np.array("Hopper-v5"),
        ref_min_score=np.array(-20.0),
        ref_max_score=np.array(3234.3),
    )


def numbers(value) -> list[float]:
    """Every number inside a JSON value, in a name-independent order."""
    if isinstance(value, bool):
        return [float(value)]
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return sorted(x for k, v in value.items() if k not in TIMING for x in numbers(v))
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return []


def run(cmd: list[str], ok: tuple[int, ...] = (0,)) -> None:
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    if rc not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {rc}")


def emit(name: str, run_dir: Path) -> None:
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = {k: v for k, v in json.loads(line).items() if k not in TIMING}
        print(json.dumps({"run": name, "record": record}))
    summary = json.loads((run_dir / "summary.json").read_text())
    keep = ("final", "best", "offline_selected", "best_mode_share", "support_rate", "mode_shares")
    print(json.dumps({"run": name, "summary": {k: summary.get(k) for k in keep}}))


def main_runs(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=False)  # a fresh directory: runs are never reused
    print(json.dumps({"python": platform.python_version(), "machine": platform.machine()}))
    demo = work / "demo"
    run(
        ["diffrl", "demo", "--steps", "2000", "--seed", "0", "--quiet", "--out", str(demo)],
        ok=(0, 1),
    )  # 1: the short demo misses its targets, which is expected
    emit("demo", demo)
    data = work / "hopper-random.npz"
    hopper_dataset(data)
    hopper = work / "hopper"
    run(
        [
            "diffrl",
            "train",
            "--algo",
            "dql",
            "--dataset",
            str(data),
            "--steps",
            "400",
            "--eval-every",
            "200",
            "--eval-episodes",
            "2",
            "--steps-per-call",
            "100",
            "--seed",
            "0",
            "--quiet",
            "--out",
            str(hopper),
        ]
    )
    emit("hopper", hopper)


def compare(before: Path, after: Path) -> int:
    a = [json.loads(x) for x in before.read_text().splitlines()[1:]]
    b = [json.loads(x) for x in after.read_text().splitlines()[1:]]
    if len(a) != len(b):
        print(f"different number of records: {len(a)} vs {len(b)}")
        return 1
    bad = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if numbers(x) != numbers(y)]
    for i in bad:
        print(f"record {i} differs:\n  {a[i]}\n  {b[i]}")
    print(json.dumps({"records": len(a), "differing": len(bad)}))
    return 1 if bad else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, help="fresh directory for the runs")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    main_runs(args.work)
