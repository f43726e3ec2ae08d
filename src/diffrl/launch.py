"""Runs as a user starts them: a dataset spec opened as data, and the evaluator that goes with it.

This is the one place that knows every kind of dataset spec, the 2-D bandits included: the data
package knows no bandit, and the loop knows no evaluator. The CLI, `diffrl.fit`, the bench and
`load_policy` start, resume and reopen runs through these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    return load_data(cfg.dataset, cfg.reward_transform, cfg.seed)


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
    return new_run(cfg, Path(out), data, evaluator_for(cfg, data))


def resume(out: Path) -> Run:
    """The run in `out`, with its training data reloaded and checked, ready to train on."""
    from diffrl.run import open_run, read_record, run_config

    record = read_record(out)
    cfg = run_config(out, record)
    data = training_data(cfg)
    return open_run(out, data, evaluator_for(cfg, data), record=record)


def reopen(out: Path) -> Run:
    """The run in `out`, to act and evaluate: config.json and checkpoints, no training data."""
    from diffrl.run import open_run, read_record

    record = read_record(out)
    run = open_run(out, record=record)
    run.evaluator = evaluator_for(run.cfg, None, record.get("evaluation"))
    return run
