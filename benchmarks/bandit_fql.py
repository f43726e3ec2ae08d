"""FQL on the 2-D `corners` bandit (BANDITS.md) across distillation weights α, through the suite.

    python benchmarks/bandit_fql.py --out DIR [--alphas 3,10,30,1000] [--steps 1500,5000,20000]
        [--seed 0]

One run per (α, steps) with the suite's FQL setting (docs/bandits.md); one JSON line each:
support rate, mode shares, best-mode share, mean true reward, and the share of samples in the
best mode's quadrant (x > 0, y < 0), where the Q term pulls them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from diffrl.bandits import suite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--alphas", default="3,10,30,1000")
    p.add_argument("--steps", default="1500,5000,20000")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for steps in map(int, args.steps.split(",")):
        for alpha in map(float, args.alphas.split(",")):
            print(
                json.dumps(one_run(args.out / f"steps{steps}", alpha, steps, args.seed)), flush=True
            )


def one_run(out: Path, alpha: float, steps: int, seed: int) -> dict:
    start = time.perf_counter()
    variant = suite.Variant("fql", (("alpha", alpha),))
    record = suite.train_variant("corners", variant, out, steps, seed=seed, progress=False)
    samples = np.load(out / variant.label / "samples.npy")
    keys = ("support_rate", "mode_shares", "best_mode_share", "mean_true_reward")
    return {
        "task": "corners", "algo": "fql", "alpha": alpha, "steps": steps, "seed": seed,
        **{k: record[k] for k in keys},
        "best_quadrant_share": float(np.mean((samples[:, 0] > 0) & (samples[:, 1] < 0))),
        "seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip


if __name__ == "__main__":
    main()
