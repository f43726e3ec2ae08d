"""IQL per-domain settings (the official `configs/*_config.py` and README commands).

Agent fields: expectile, temperature (β), actor_dropout. Run fields: reward_transform, epochs (of
1000 steps), eval_episodes. Fixed everywhere: 256-256 networks, lr 3e-4 (actor cosine-decayed over
the run), τ = 0.005, γ = 0.99, batch 256, 1M steps, weights clipped at 100.

- Gym-MuJoCo: expectile 0.7, β 3.0; rewards scaled by 1000 / (max − min episode return)
  (`iql_locomotion`).
- AntMaze: expectile 0.9, β 10.0; rewards − 1 (`iql_antmaze`); 100 evaluation episodes (the
  README's command). The rows are the same for the -v0 and -v2 ids.
- Kitchen and Adroit: expectile 0.7, β 0.5, actor dropout 0.1; raw rewards.
"""

from __future__ import annotations

from diffrl.data.scores import ADROIT_TASKS, ANTMAZE_MAZES, KITCHEN_DATASETS

_MUJOCO = {"expectile": 0.7, "temperature": 3.0, "reward_transform": "iql_locomotion"}
_ANTMAZE = {"expectile": 0.9, "temperature": 10.0, "reward_transform": "iql_antmaze"}
_KITCHEN = {"expectile": 0.7, "temperature": 0.5, "actor_dropout": 0.1, "reward_transform": "no"}

_MUJOCO_TASKS = [
    f"{env}-{data}-v2"
    for env in ("halfcheetah", "hopper", "walker2d")
    for data in ("medium", "medium-replay", "medium-expert")
]
_ANTMAZE_TASKS = [f"antmaze-{maze}-{v}" for maze in ANTMAZE_MAZES for v in ("v0", "v2")]
_KITCHEN_TASKS = [f"kitchen-{data}-v0" for data in KITCHEN_DATASETS]
_ADROIT_TASKS = [
    f"{env}-{data}-{v}"
    for env in ADROIT_TASKS
    for data in ("human", "cloned")
    for v in ("v0", "v1")
]


def _rows(tasks: list[str], settings: dict, eval_episodes: int) -> dict[str, dict]:
    return {t: {**settings, "epochs": 1000, "eval_episodes": eval_episodes} for t in tasks}


PRESETS = {
    **_rows(_MUJOCO_TASKS, _MUJOCO, 10),
    **_rows(_ANTMAZE_TASKS, _ANTMAZE, 100),
    **_rows(_KITCHEN_TASKS + _ADROIT_TASKS, _KITCHEN, 10),
}
