"""`diffrl demo`: Diffusion-QL on the 2-D bandit `corners`, the built-in job that needs no data.

The data are four equally likely action clusters with mean rewards 0, 1.5, 3 and 5. Behaviour
cloning alone would keep all four; the Q term must move the policy onto the best cluster
(bottom right) without leaving the data (BANDITS.md, claim 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import fileio, train
from diffrl.bandits import bandit_metrics, make_task, plot_panels, to_task_coords

TASK = "corners"
BEST_MODE_TARGET = 0.90
SUPPORT_TARGET = 0.95

# Settings chosen to finish in a few minutes on 2 cores; docs/decisions.md ("The demo") says why
# they differ from the released toy script (N = 50, η = 2.5, 100 000 steps).
DEMO_AGENT = {
    "n_steps": 10,  # N = 5 fits the four tight clusters too blurrily at this budget
    "hidden": 128,
    "eta": 0.1,  # η = 2.5 pushes samples off the data onto the critic's extrapolation here
    "actor_lr": 1e-3,
    "grad_norm": 0.0,
    "lr_decay": True,  # clean mode: per-step cosine to 0, which settles the final policy
    "selection": "softmax",  # the official evaluation: 50 candidates, one drawn from softmax(Q)
    "candidates": 50,
}
DEMO_STEPS = 12000


def demo_config(steps: int | None, seed: int) -> train.RunConfig:
    steps = steps or DEMO_STEPS
    return train.RunConfig(
        algo="dql",
        dataset=f"bandit:{TASK}",
        steps=steps,
        seed=seed,
        batch_size=100,  # the toy script's batch size
        eval_every=max(1, steps // 4),
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
    ranked = run.evaluator.last_samples
    plain = _plain_samples(run, state)
    plain_metrics = bandit_metrics(run.evaluator.task, run.evaluator.data_task, plain)
    _plot(
        run,
        {"policy (50 candidates, softmax over Q)": ranked, "plain reverse-chain samples": plain},
        out / "actions.png",
    )
    result: dict[str, Any] = {
        **summary,
        "task": TASK,
        "action_choice": f"{run.acfg.selection} over {run.acfg.candidates} candidates",
        "plain_samples": plain_metrics,
        "best_mode_share": final["best_mode_share"],
        "support_rate": final["support_rate"],
        "mode_shares": final["mode_shares"],
        "mean_true_reward": final["mean_true_reward"],
        "targets": {"best_mode_share": BEST_MODE_TARGET, "support_rate": SUPPORT_TARGET},
        "passed": bool(
            final["best_mode_share"] >= BEST_MODE_TARGET and final["support_rate"] >= SUPPORT_TARGET
        ),
    }
    fileio.write_json_atomic(out / "summary.json", result)
    return result


def _plain_samples(run: train.Run, state: Any) -> np.ndarray:
    """1,000 actions straight from the reverse chain, no critic ranking."""
    act = train.make_act_fn(run.module, run.acfg, run.spec, selection="none")
    key = jax.random.PRNGKey(run.cfg.seed + 1)
    actions = act(state, jnp.asarray(run.evaluator.obs), key)
    return to_task_coords(run.evaluator.task, np.asarray(actions))


def _plot(run: train.Run, panels: dict[str, np.ndarray], path: Path) -> None:
    task = make_task(TASK)
    data = to_task_coords(task, run.data.actions)
    plot_panels(task, data, run.data.rewards, panels, path)
