"""DiffCPS per-task settings (ALGORITHMS.md §3.2, hard-coded in the official `run.py`).

Agent fields: actor_lr, lambda_init, lambda_min, kappa, policy_freq, max_q_backup, grad_norm.
Run fields: reward_transform, epochs (of 1000 steps), top_k, eval_episodes. Fixed everywhere:
N = 5, vp, γ = 0.99, τ = 0.005, batch 256, critic lr 3e-4, λ lr 3e-5, λ_max = 100,
EMA 0.995/5/1000, evaluation every 50 epochs, 50 candidates.

The official code selects models online only (best evaluation). `top_k` (the rank used by the
library's offline selection in summary.json) is taken from Diffusion-QL's table for the same
task, the only tuned ranks there are; the lr, max-Q, reward, epochs and gn columns equal DQL's.
"""

from __future__ import annotations

from diffrl.presets import dql

_COLUMNS = (
    "actor_lr",
    "lambda_init",
    "lambda_min",
    "kappa",
    "policy_freq",
    "max_q_backup",
    "reward_transform",
    "epochs",
    "grad_norm",
)

_ROWS = {
    "halfcheetah-medium-v2": (3e-4, 1.0, 0.0, 0.06, 2, False, "no", 2000, 9.0),
    "hopper-medium-v2": (3e-4, 1.0, 0.0, 0.05, 2, False, "no", 2000, 9.0),
    "walker2d-medium-v2": (3e-4, 1.0, 0.0, 0.03, 2, False, "no", 2000, 1.0),
    "halfcheetah-medium-replay-v2": (3e-4, 1.0, 0.0, 0.06, 2, False, "no", 2000, 2.0),
    "hopper-medium-replay-v2": (3e-4, 1.0, 0.0, 0.03, 2, False, "no", 2000, 4.0),
    "walker2d-medium-replay-v2": (3e-4, 1.0, 0.0, 0.03, 2, False, "no", 2000, 4.0),
    "halfcheetah-medium-expert-v2": (3e-4, 1.0, 0.0, 0.04, 2, False, "no", 2000, 7.0),
    "hopper-medium-expert-v2": (3e-4, 1.0, 0.0, 0.03, 2, False, "no", 2000, 5.0),
    "walker2d-medium-expert-v2": (3e-4, 1.0, 0.0, 0.04, 2, False, "no", 2000, 5.0),
    "antmaze-umaze-v0": (3e-4, 3.0, 0.3, 0.2, 2, False, "cql_antmaze", 1000, 2.0),
    "antmaze-umaze-diverse-v0": (3e-4, 3.0, 0.3, 0.09, 2, True, "cql_antmaze", 1000, 3.0),
    "antmaze-medium-play-v0": (1e-3, 1.0, 0.3, 0.3, 2, True, "cql_antmaze", 1000, 2.0),
    "antmaze-medium-diverse-v0": (3e-4, 1.0, 0.3, 0.2, 2, True, "cql_antmaze", 1000, 1.0),
    "antmaze-large-play-v0": (3e-4, 0.5, 0.3, 0.2, 4, True, "cql_antmaze", 1000, 10.0),
    "antmaze-large-diverse-v0": (3e-4, 0.5, 0.3, 0.2, 4, True, "cql_antmaze", 1000, 7.0),
}


def _run_fields(name: str) -> dict:
    ref = dql.PRESETS[name]
    return {"top_k": ref["top_k"], "eval_episodes": ref["eval_episodes"]}


PRESETS = {
    name: {**dict(zip(_COLUMNS, row, strict=True)), **_run_fields(name)}
    for name, row in _ROWS.items()
}
