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

from diffrl import acting, fileio, launch
from diffrl.bandits import bandit_metrics, make_task, plot_panels, to_task_coords
from diffrl.bandits.suite import Variant, bandit_run_config
from diffrl.run import Run, execute

TASK = "corners"
BEST_MODE_TARGET = 0.90
SUPPORT_TARGET = 0.95


def run_demo(out: Path, steps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Train, evaluate on 1,000 sampled actions, write summary.json and actions.png in `out`."""
    out = Path(out)
    # the suite's Diffusion-QL bandit settings (bandits/suite.py; docs/decisions.md, "The demo")
    run = launch.start(bandit_run_config(TASK, Variant("dql"), steps, seed), out)
    summary = execute(run, progress=progress)
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
        "action_choice": f"{run.choice.selection} over {run.choice.candidates} candidates",
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


def _plain_samples(run: Run, state: Any) -> np.ndarray:
    """1,000 actions straight from the reverse chain, no critic ranking."""
    act = acting.make_act_fn(run.agent, run.acfg, run.spec, acting.ActionChoice())
    key = jax.random.PRNGKey(run.cfg.seed + 1)
    actions = act(state, jnp.asarray(run.evaluator.obs), key)
    return to_task_coords(run.evaluator.task, np.asarray(actions))


def _plot(run: Run, panels: dict[str, np.ndarray], path: Path) -> None:
    task = make_task(TASK)
    data = to_task_coords(task, run.data.actions)
    plot_panels(task, data, run.data.rewards, panels, path)
