"""FQL per-task settings (the official README's commands; Park, Li & Levine 2025).

Fixed everywhere (`get_config()`, the agent's defaults): 4 × 512 networks, one Adam at 3e-4,
batch 256, τ = 0.005, 10 flow steps, mean-aggregated target critics, no Q-loss normalisation.
Per environment, the same for all five single-task variants (`-singletask[-taskN]-v0`):

- cube-single/double and scene (play): α = 300; puzzle-3x3/4x4 (play): α = 1000.
- antmaze-large (navigate): α = 10, min-aggregated targets; antmaze-giant: also γ = 0.995.
- humanoidmaze-medium/large (navigate): α = 30, γ = 0.995; antsoccer-arena: α = 10, γ = 0.995.

Run fields: 1M steps (state-based OGBench tasks), evaluation every 100 000 steps over 50
episodes. Rewards as OGBench relabels them (no transform).
"""

from __future__ import annotations

_RUN = {"epochs": 1000, "eval_every": 100_000, "eval_episodes": 50, "reward_transform": "no"}
_ENVS = {
    "cube-single-play": {"alpha": 300.0},
    "cube-double-play": {"alpha": 300.0},
    "scene-play": {"alpha": 300.0},
    "puzzle-3x3-play": {"alpha": 1000.0},
    "puzzle-4x4-play": {"alpha": 1000.0},
    "antmaze-large-navigate": {"alpha": 10.0, "q_agg": "min"},
    "antmaze-giant-navigate": {"alpha": 10.0, "q_agg": "min", "gamma": 0.995},
    "humanoidmaze-medium-navigate": {"alpha": 30.0, "gamma": 0.995},
    "humanoidmaze-large-navigate": {"alpha": 30.0, "gamma": 0.995},
    "antsoccer-arena-navigate": {"alpha": 10.0, "gamma": 0.995},
}
_TASKS = ("", "-task1", "-task2", "-task3", "-task4", "-task5")

PRESETS = {
    f"{env}-singletask{task}-v0": {**settings, **_RUN}
    for env, settings in _ENVS.items()
    for task in _TASKS
}
