"""DTQL per-task settings (ALGORITHMS.md §2.8, hard-coded in the official `main.py`).

Agent fields: lr, alpha, nll_weight (the official dict's `gamma`, the weight of the dataset-action
likelihood term — not the discount), lr_decay, expectile. Run fields: reward_transform, epochs (of
1000 steps), top_k (offline selection rank), eval_episodes. Fixed everywhere: 50 pretraining
epochs, τ = 0.005, γ = 0.99, σ_min/σ_max/σ_data = 0.002/80/0.5, critic lr 3e-4, evaluation every
50 epochs, 1024 softmax-ranked candidates.

`epochs` includes the 50 pretraining epochs, because the library runs pretraining as the first
`pretrain_steps` updates of the run: a row's main-phase epochs (the table's column, kept in
`MAIN_EPOCHS`) plus 50. With evaluations every 50 epochs, the first evaluation falls at the end
of pretraining and the others at main-phase epochs 50, 100, ..., as the official schedule.

The official batch size (2048 on AntMaze, 256 elsewhere) is the run field `batch_size`.
`top_k` is taken from Diffusion-QL's table for the same task, as DiffCPS's presets do (DTQL's
code selects no model).
"""

from __future__ import annotations

from diffrl.presets import dql

PRETRAIN_EPOCHS = 50

_COLUMNS = ("lr", "alpha", "nll_weight", "lr_decay", "epochs", "expectile", "reward_transform")

_ANTMAZE = {
    "antmaze-umaze": (3e-4, 1.0, 1.0, False, 500, 0.9, "iql_antmaze"),
    "antmaze-umaze-diverse": (3e-5, 1.0, 1.0, True, 500, 0.9, "iql_antmaze"),
    "antmaze-medium-play": (3e-4, 1.0, 1.0, False, 400, 0.9, "iql_antmaze"),
    "antmaze-medium-diverse": (3e-4, 1.0, 1.0, False, 400, 0.9, "iql_antmaze"),
    "antmaze-large-play": (3e-4, 1.0, 1.0, False, 350, 0.9, "iql_antmaze"),
    "antmaze-large-diverse": (3e-4, 0.5, 1.0, False, 300, 0.9, "iql_antmaze"),
}

_ROWS = {
    "halfcheetah-medium-v2": (3e-4, 1.0, 0.0, False, 1000, 0.7, "no"),
    "halfcheetah-medium-replay-v2": (3e-4, 5.0, 0.0, False, 1000, 0.7, "no"),
    "halfcheetah-medium-expert-v2": (3e-4, 50.0, 0.0, False, 1000, 0.7, "no"),
    "hopper-medium-v2": (1e-4, 5.0, 0.0, True, 1000, 0.7, "no"),
    "hopper-medium-replay-v2": (3e-4, 5.0, 0.0, False, 1000, 0.7, "no"),
    "hopper-medium-expert-v2": (3e-4, 20.0, 0.0, False, 1000, 0.7, "no"),
    "walker2d-medium-v2": (3e-4, 5.0, 0.0, True, 1000, 0.7, "no"),
    "walker2d-medium-replay-v2": (3e-4, 5.0, 0.0, True, 1000, 0.7, "no"),
    "walker2d-medium-expert-v2": (3e-4, 5.0, 0.0, True, 1000, 0.7, "no"),
    # the AntMaze rows are identical for the -v0 and -v2 ids
    **{f"{task}-{v}": row for task, row in _ANTMAZE.items() for v in ("v0", "v2")},
    "pen-human-v1": (3e-5, 1500.0, 0.0, True, 300, 0.9, "no"),
    "pen-cloned-v1": (1e-5, 1500.0, 0.0, False, 200, 0.7, "no"),
    "kitchen-complete-v0": (1e-4, 200.0, 0.0, True, 500, 0.7, "no"),
    "kitchen-partial-v0": (1e-4, 100.0, 0.0, True, 1000, 0.7, "no"),
    "kitchen-mixed-v0": (3e-4, 200.0, 0.0, True, 500, 0.7, "no"),
}

MAIN_EPOCHS = {name: row[_COLUMNS.index("epochs")] for name, row in _ROWS.items()}
BATCH_SIZE = {name: 2048 if name.startswith("antmaze") else 256 for name in _ROWS}


def _eval_episodes(name: str) -> int:
    # AntMaze is forced to 100; otherwise the official rule: 10 for "v2" ids, else 100
    return 100 if name.startswith("antmaze") or "v2" not in name else 10


def _top_k(name: str) -> int:
    # Diffusion-QL's table lists the AntMaze tasks under their -v0 ids only
    dql_name = name.replace("-v2", "-v0") if name.startswith("antmaze") else name
    return dql.PRESETS[dql_name]["top_k"]


def _preset(name: str, row: tuple) -> dict:
    preset = dict(zip(_COLUMNS, row, strict=True))
    preset["epochs"] += PRETRAIN_EPOCHS
    return {
        **preset,
        "top_k": _top_k(name),
        "eval_episodes": _eval_episodes(name),
        "batch_size": BATCH_SIZE[name],
    }


PRESETS = {name: _preset(name, row) for name, row in _ROWS.items()}
