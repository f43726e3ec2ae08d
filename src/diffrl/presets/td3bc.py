"""TD3+BC per-task settings (Fujimoto & Gu 2021, and the official README's -v2 results).

The paper uses one configuration for every D4RL MuJoCo task: α = 2.5, state normalisation,
actor/critic lr 3e-4, batch 256, policy delay 2, target noise 0.2 clipped at 0.5, τ = 0.005,
γ = 0.99, 1M steps, evaluations every 5000 steps over 10 episodes, raw rewards. These are the
agent's `Config` defaults; the rows only make the run fields explicit. (The evaluation interval
is not a preset field: pass `--eval-every 5000` for the official schedule.)
"""

from __future__ import annotations

_ENVS = ("halfcheetah", "hopper", "walker2d")
_DATASETS = ("random", "medium", "medium-replay", "medium-expert", "expert")

_ROW = {
    "alpha": 2.5,
    "normalize_states": True,
    "reward_transform": "no",
    "epochs": 1000,
    "batch_size": 256,
    "eval_episodes": 10,
}

PRESETS = {f"{env}-{data}-v2": dict(_ROW) for env in _ENVS for data in _DATASETS}
