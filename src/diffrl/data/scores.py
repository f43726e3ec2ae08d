"""D4RL dataset names: reference returns, episode limits and the gymnasium env to evaluate in.

The values are D4RL's (`d4rl/infos.py` REF_MIN_SCORE / REF_MAX_SCORE and the registered
`max_episode_steps`). Normalised score = 100 · (return − REF_MIN) / (REF_MAX − REF_MIN).
"""

from __future__ import annotations

from typing import Any

from diffrl.data.dataset import DatasetError

LOCOMOTION_AGENTS = ("halfcheetah", "hopper", "walker2d", "ant")
LOCOMOTION_DATASETS = (
    "random",
    "medium",
    "expert",
    "medium-replay",
    "medium-expert",
    "full-replay",
)
ANTMAZE_MAZES = (
    "umaze",
    "umaze-diverse",
    "medium-play",
    "medium-diverse",
    "large-play",
    "large-diverse",
)
ADROIT_TASKS = ("pen", "door", "hammer", "relocate")
ADROIT_DATASETS = ("human", "cloned", "expert")
KITCHEN_DATASETS = ("complete", "partial", "mixed")

# One row per agent/task: every dataset of it shares the random-policy and expert returns.
_LOCOMOTION_REFS = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}
_ADROIT_REFS = {
    "pen": (96.262799, 3076.8331017826877),
    "door": (-56.512833, 2880.5693087298737),
    "hammer": (-274.856578, 12794.134825156867),
    "relocate": (-6.425911, 4233.877797728884),
}
_MAZE2D_REFS = {
    "maze2d-umaze-v1": (23.85, 161.86),
    "maze2d-medium-v1": (13.13, 277.39),
    "maze2d-large-v1": (6.7, 273.99),
    "maze2d-umaze-dense-v1": (68.537689, 193.66285642381482),
    "maze2d-medium-dense-v1": (44.264742, 297.4552547777125),
    "maze2d-large-dense-v1": (30.569041, 303.4857382709002),
}
_MAZE2D_STEPS = {"umaze": 300, "medium": 600, "large": 800}


def _build_tables() -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    refs: dict[str, tuple[float, float]] = {}
    steps: dict[str, int] = {}
    for agent, ref in _LOCOMOTION_REFS.items():
        for dset in LOCOMOTION_DATASETS:
            for version in ("v0", "v1", "v2"):
                refs[f"{agent}-{dset}-{version}"] = ref
                steps[f"{agent}-{dset}-{version}"] = 1000
    for maze in ANTMAZE_MAZES:
        for version in ("v0", "v1", "v2"):
            refs[f"antmaze-{maze}-{version}"] = (0.0, 1.0)
            steps[f"antmaze-{maze}-{version}"] = 700 if maze.startswith("umaze") else 1000
    for task, ref in _ADROIT_REFS.items():
        for dset in ADROIT_DATASETS:
            for version in ("v0", "v1"):
                refs[f"{task}-{dset}-{version}"] = ref
                steps[f"{task}-{dset}-{version}"] = 100 if task == "pen" else 200
    for dset in KITCHEN_DATASETS:
        refs[f"kitchen-{dset}-v0"] = (0.0, 4.0)
        steps[f"kitchen-{dset}-v0"] = 280
    for name, ref in _MAZE2D_REFS.items():
        refs[name] = ref
        steps[name] = _MAZE2D_STEPS[name.split("-")[1]]
    return refs, steps


REF_SCORES, MAX_EPISODE_STEPS = _build_tables()


def known_d4rl_names() -> list[str]:
    """Every D4RL dataset name with a reference-return entry, sorted."""
    return sorted(REF_SCORES)


def reference_returns(name: str) -> tuple[float, float] | None:
    """(REF_MIN_SCORE, REF_MAX_SCORE) of a D4RL dataset name, or None when unknown."""
    return REF_SCORES.get(name)


def normalized_score(name: str, episode_return: float) -> float:
    """D4RL normalised score ×100 (0 = random policy, 100 = expert) of a return on `name`."""
    refs = reference_returns(name)
    if refs is None:
        raise DatasetError(
            f"no reference returns for '{name}': it is not a known D4RL dataset name "
            f"(see diffrl.data.list_known_d4rl_names())."
        )
    lo, hi = refs
    return 100.0 * (float(episode_return) - lo) / (hi - lo)


def max_episode_steps(name: str) -> int | None:
    """The time limit D4RL registers for the env of `name`, or None when unknown."""
    return MAX_EPISODE_STEPS.get(name)


_LOCOMOTION_ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    "hopper": ("Hopper-v4", {}),
    "halfcheetah": ("HalfCheetah-v4", {}),
    "walker2d": ("Walker2d-v4", {}),
    "ant": ("Ant-v4", {"use_contact_forces": True}),
}


def eval_env_for(name: str) -> tuple[str, dict[str, Any]] | None:
    """The gymnasium (id, kwargs) that faithfully reproduces the env of a D4RL dataset, if any.

    Gym-MuJoCo data (every version: D4RL uses gym's "-v2" env classes for all of them) map to
    the gymnasium v4 envs, which share their model, reward and termination; Ant needs the
    contact forces to get D4RL's 111-dim observation. pen-*-v1 maps to AdroitHandPen-v1.
    AntMaze, Kitchen, Maze2d and the other Adroit tasks have no verified gymnasium
    counterpart and give None.
    """
    if name not in REF_SCORES:
        return None
    head = name.split("-")[0]
    if head in _LOCOMOTION_ENVS:
        env_id, kwargs = _LOCOMOTION_ENVS[head]
        return env_id, dict(kwargs)
    if head == "pen" and name.endswith("-v1"):
        return "AdroitHandPen-v1", {}
    return None
