"""Diffusion-QL per-task settings (ALGORITHMS.md §1.9, hard-coded in the official `main.py`).

Agent fields: actor_lr, eta, max_q_backup, grad_norm. Run fields: reward_transform, epochs (of
1000 steps), top_k (offline selection rank), eval_episodes. Fixed everywhere: N = 5, vp, γ = 0.99,
τ = 0.005, batch 256, EMA 0.995/5/1000, critic lr 3e-4, evaluation every 50 epochs, 50 candidates.
"""

from __future__ import annotations

_COLUMNS = ("actor_lr", "eta", "max_q_backup", "reward_transform", "epochs", "grad_norm", "top_k")

_ROWS = {
    "halfcheetah-medium-v2": (3e-4, 1.0, False, "no", 2000, 9.0, 1),
    "hopper-medium-v2": (3e-4, 1.0, False, "no", 2000, 9.0, 2),
    "walker2d-medium-v2": (3e-4, 1.0, False, "no", 2000, 1.0, 1),
    "halfcheetah-medium-replay-v2": (3e-4, 1.0, False, "no", 2000, 2.0, 0),
    "hopper-medium-replay-v2": (3e-4, 1.0, False, "no", 2000, 4.0, 2),
    "walker2d-medium-replay-v2": (3e-4, 1.0, False, "no", 2000, 4.0, 1),
    "halfcheetah-medium-expert-v2": (3e-4, 1.0, False, "no", 2000, 7.0, 0),
    "hopper-medium-expert-v2": (3e-4, 1.0, False, "no", 2000, 5.0, 2),
    "walker2d-medium-expert-v2": (3e-4, 1.0, False, "no", 2000, 5.0, 1),
    "antmaze-umaze-v0": (3e-4, 0.5, False, "cql_antmaze", 1000, 2.0, 2),
    "antmaze-umaze-diverse-v0": (3e-4, 2.0, True, "cql_antmaze", 1000, 3.0, 2),
    "antmaze-medium-play-v0": (1e-3, 2.0, True, "cql_antmaze", 1000, 2.0, 1),
    "antmaze-medium-diverse-v0": (3e-4, 3.0, True, "cql_antmaze", 1000, 1.0, 1),
    "antmaze-large-play-v0": (3e-4, 4.5, True, "cql_antmaze", 1000, 10.0, 2),
    "antmaze-large-diverse-v0": (3e-4, 3.5, True, "cql_antmaze", 1000, 7.0, 1),
    "pen-human-v1": (3e-5, 0.15, False, "normalize", 1000, 7.0, 2),
    "pen-cloned-v1": (3e-5, 0.1, False, "normalize", 1000, 8.0, 2),
    "kitchen-complete-v0": (3e-4, 0.005, False, "no", 250, 9.0, 2),
    "kitchen-partial-v0": (3e-4, 0.005, False, "no", 1000, 10.0, 2),
    "kitchen-mixed-v0": (3e-4, 0.005, False, "no", 1000, 10.0, 0),
}


def _eval_episodes(name: str) -> int:
    return 10 if "v2" in name else 100  # the official rule: 10 episodes for "v2" ids, else 100


PRESETS = {
    name: {**dict(zip(_COLUMNS, row, strict=True)), "eval_episodes": _eval_episodes(name)}
    for name, row in _ROWS.items()
}
