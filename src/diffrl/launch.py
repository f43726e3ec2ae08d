"""Runs as a user starts them: a dataset spec opened as data, and the evaluator that goes with it.

This is the one place that knows every kind of dataset spec, the 2-D bandits included: the data
package knows no bandit, and the loop knows no evaluator. The CLI, `diffrl.fit`, the bench and
`load_policy` start, resume and reopen runs through these functions.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffrl import fileio
from diffrl.data import DatasetError, OfflineDataset, apply_reward_transform, load_dataset
from diffrl.data.transforms import check_reward_transform

if TYPE_CHECKING:  # the run package imports JAX; `load_data` (diffrl info) must not
    from diffrl.run import Evaluator, Run, RunConfig

BANDIT_PREFIX = "bandit:"


def load_data(spec: str, reward_transform: str = "no", seed: int = 0) -> OfflineDataset:
    """The dataset `spec` names (`bandit:TASK` is generated from `seed`), reward-transformed."""
    if not spec.startswith(BANDIT_PREFIX):
        return load_dataset(spec, reward_transform)
    from diffrl.bandits import make_bandit_dataset

    check_reward_transform(reward_transform)
    try:
        data = make_bandit_dataset(spec.removeprefix(BANDIT_PREFIX), seed=seed)
    except ValueError as exc:
        raise DatasetError(f"{spec}: {exc}") from None
    return apply_reward_transform(data, reward_transform)


def training_data(cfg: RunConfig) -> OfflineDataset:
    from diffrl.run.settings import reward_transform

    return load_data(cfg.dataset, reward_transform(cfg), cfg.seed)


def evaluator_for(cfg: RunConfig, data: OfflineDataset | None, record: Any = None) -> Evaluator:
    """Bandit metrics for bandit tasks, Gymnasium rollouts otherwise (None: nowhere to evaluate).

    `record` is config.json's "evaluation" entry when a run is reopened without its data."""
    if cfg.dataset.startswith(BANDIT_PREFIX):
        from diffrl.bandits.evaluate import BanditEvaluator

        data = data if data is not None else training_data(cfg)
        return BanditEvaluator(cfg.dataset.removeprefix(BANDIT_PREFIX), data)
    from diffrl.evaluate import GymEvaluator

    if data is None:
        return GymEvaluator.from_record(record) if record else None
    return GymEvaluator.for_data(cfg, data)


def start(cfg: RunConfig, out: Path, data: OfflineDataset | None = None) -> Run:
    """A new run in `out` on the data `cfg` names (or `data`), with its evaluator."""
    from diffrl.run import complete, new_run

    cfg = complete(cfg)  # concrete action choice, for the evaluator's record too
    data = data if data is not None else training_data(cfg)
    evaluator = evaluator_for(cfg, data)
    check_evaluation(evaluator, data)
    for line in suspicious(cfg, data, evaluator):
        print(f"warning: {line}", file=sys.stderr)
    return new_run(cfg, Path(out), data, evaluator)


def presets_for_env(cfg: RunConfig, env_id: str | None) -> list[str]:
    """The algorithm's presets for the task family of `env_id` (Hopper-v5 -> hopper-*), when the
    run itself has no preset."""
    from diffrl.presets import preset_names

    if cfg.preset is not None or not env_id:
        return []
    family = env_id.split("-")[0].lower()
    return [name for name in preset_names(cfg.algo) if name.startswith(family + "-")]


def suspicious(cfg: RunConfig, data: OfflineDataset, evaluator: Evaluator | None) -> list[str]:
    """Settings that are allowed but rarely meant, each said in one line."""
    lines = []
    if cfg.batch_size > data.size:
        lines.append(
            f"batch size {cfg.batch_size} is larger than the dataset ({data.size} transitions): "
            "every batch repeats transitions"
        )
    nearby = presets_for_env(cfg, data.env_id)
    if nearby:
        lines.append(
            f"{data.source} has no {cfg.algo} preset, but its environment {data.env_id} has: "
            f"{', '.join(nearby)} (pass --preset NAME to use one; this run uses the defaults)"
        )
    if cfg.preset is None and cfg.reward_transform != "no":
        lines.append(
            f"{cfg.algo} without a preset: rewards transformed by '{cfg.reward_transform}' "
            "(pass --reward-transform no to train on them as stored)"
        )
    if evaluator is None:
        lines.append(
            f"{data.source} records no environment and --env was not given: the run trains "
            "without evaluations (no scores, no best checkpoint); pass --env ENV_ID to evaluate"
        )
    return lines


def check_evaluation(evaluator: Evaluator | None, data: OfflineDataset) -> None:
    """A Gym evaluator's env exists and fits `data`, checked before anything is written."""
    from diffrl.evaluate import GymEvaluator, check_env

    if isinstance(evaluator, GymEvaluator):
        max_action = float(data.action_high)
        check_env(evaluator.spec, data.obs_dim, data.action_dim, max_action, data.source)


def resume(out: Path, steps: int | None = None) -> Run:
    """The run in `out`, with its training data reloaded and checked, ready to train on.

    `steps` extends the run to that many steps (config.json is updated; schedules that depend
    on the run's length, such as cosine decays, follow the new length from here on)."""
    from diffrl.run import open_run, read_record, run_config

    record = read_record(out)
    cfg = run_config(out, record)
    extend = steps is not None and steps != cfg.steps
    if extend:
        record = _extended(out, record, cfg, steps)
        cfg = run_config(out, record)
    data = training_data(cfg)
    run = open_run(out, data, evaluator_for(cfg, data), record=record)  # locks `out`
    if extend:
        extended = {**run.record(), "extended_from": record["extended_from"]}
        fileio.write_json_atomic(Path(out) / "config.json", extended)
    return run


def _extended(out: Path, record: dict[str, Any], cfg: RunConfig, steps: int) -> dict[str, Any]:
    from diffrl.run import RunError

    if steps < cfg.steps:
        raise RunError(
            f"{out}: --steps {steps} is below the run's {cfg.steps}; a run is only extended"
        )
    print(f"extending {out} from {cfg.steps} to {steps} steps", file=sys.stderr)
    run = {**record["run"], "steps": steps}
    return {**record, "run": run, "extended_from": cfg.steps}


def reopen(out: Path) -> Run:
    """The run in `out`, to act and evaluate: config.json and checkpoints, no training data."""
    from diffrl.run import open_run, read_record

    record = read_record(out)
    run = open_run(out, record=record)
    run.evaluator = evaluator_for(run.cfg, None, record.get("evaluation"))
    return run


# -- many seeds in one program --------------------------------------------------------------------
def seed_dir(parent: Path, seed: int) -> Path:
    """Where seed `seed` of a group started with `--seeds` keeps its ordinary run directory."""
    return Path(parent) / f"seed{seed}"


def group_dirs(parent: Path) -> list[Path]:
    """The run directories of the group in `parent` (none: it is not a group)."""
    parent = Path(parent)
    if not parent.is_dir() or (parent / "config.json").exists():
        return []
    found = [p for p in parent.glob("seed*") if (p / "config.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("seed") or -1))


def start_many(cfg: RunConfig, parent: Path, seeds: list[int]) -> list[Run]:
    """New runs of `cfg` for each seed, one directory each under `parent`, to train together
    (run.execute_many). The data is loaded once when the seed does not change it."""
    from diffrl.run import RunError

    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise RunError(f"{parent}: --out is a file, not a directory; choose another --out")
    mine = {seed_dir(parent, s).name for s in seeds}
    others = (
        sorted(p.name for p in parent.iterdir() if p.name not in mine) if parent.exists() else []
    )
    if others:
        raise RunError(
            f"{parent} holds other files ({', '.join(others[:5])}); a group of seeds needs an "
            "empty or new --out"
        )
    shared = None if cfg.dataset.startswith(BANDIT_PREFIX) else training_data(cfg)
    return _all_or_none(
        [
            lambda s=s: start(dataclasses.replace(cfg, seed=s), seed_dir(parent, s), shared)
            for s in seeds
        ]  # fmt: skip
    )


def resume_many(parent: Path, steps: int | None = None) -> list[Run]:
    """The group of runs in `parent`, reopened to train on together."""
    return _all_or_none([lambda d=d: resume(d, steps) for d in group_dirs(parent)])


def _all_or_none(openers: list) -> list[Run]:
    """Open every run (each takes its directory's lock), or none: if one fails, the locks the
    others took are released before the error goes on."""
    from diffrl.run import lock

    runs: list[Run] = []
    try:
        for open_one in openers:
            runs.append(open_one())
    except BaseException:
        for r in runs:
            lock.release(r.out)
        raise
    return runs
