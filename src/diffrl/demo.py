"""`diffrl demo`: Diffusion-QL on the 2-D bandit `corners`, the built-in job that needs no data.

The data are four equally likely action clusters with mean rewards 0, 1.5, 3 and 5. Behaviour
cloning alone would keep all four; the Q term must move the policy onto the best cluster
(bottom right) without leaving the data (BANDITS.md, claim 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffrl import checkpoint, train
from diffrl.bandits import make_task, plot_panels, to_task_coords

TASK = "corners"
BEST_MODE_TARGET = 0.90
SUPPORT_TARGET = 0.95

# Settings chosen to finish in about a minute on 2 cores; see docs/decisions.md ("demo").
DEMO_AGENT = {
    "hidden": 128,
    "eta": 2.5,  # the released toy script's weight of the Q term
    "grad_norm": 0.0,
    "lr_decay": False,
    "selection": "none",  # score the policy's own samples, not a critic-ranked pick
}


def demo_config(steps: int | None, seed: int) -> train.RunConfig:
    steps = steps or 6000
    return train.RunConfig(
        algo="dql",
        dataset=f"bandit:{TASK}",
        steps=steps,
        seed=seed,
        batch_size=256,
        eval_every=max(1, steps // 3),
        steps_per_call=500,
        mode="clean",
        agent=dict(DEMO_AGENT),
    )


def run_demo(out: Path, steps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Train, evaluate on 1,000 sampled actions, write summary.json and actions.png in `out`."""
    out = Path(out)
    run = train.new_run(demo_config(steps, seed), out)
    summary = train.execute(run, progress=progress)
    state = run.load_state(run.cfg.steps)
    final = run.evaluate(state, run.cfg.steps)
    samples = run.evaluator.last_samples
    _plot(run, samples, out / "actions.png")
    result: dict[str, Any] = {
        **summary,
        "task": TASK,
        "best_mode_share": final["best_mode_share"],
        "support_rate": final["support_rate"],
        "mode_shares": final["mode_shares"],
        "mean_true_reward": final["mean_true_reward"],
        "targets": {"best_mode_share": BEST_MODE_TARGET, "support_rate": SUPPORT_TARGET},
        "passed": bool(
            final["best_mode_share"] >= BEST_MODE_TARGET and final["support_rate"] >= SUPPORT_TARGET
        ),
    }
    checkpoint.write_json_atomic(out / "summary.json", result)
    return result


def _plot(run: train.Run, samples: np.ndarray, path: Path) -> None:
    task = make_task(TASK)
    data = to_task_coords(task, run.data.actions)
    title = f"Diffusion-QL samples ({run.cfg.steps} steps)"
    plot_panels(task, data, run.data.rewards, {title: samples}, path)
