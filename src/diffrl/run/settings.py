"""A run's settings and their resolution: flags, `--set`, presets and config.json, one parser.

Everything a user can set is either a `RunConfig` field or a field of the algorithm's `Config`;
`resolve` sorts a flat mapping into the two by name, applies the preset under what was given,
validates every value (`diffrl.settings`) and fills in the algorithm's default action choice, so
a run's config.json records concrete, typed values. Nothing here touches the disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from annotated_types import MinLen

from diffrl.acting import choose
from diffrl.agents import ALGORITHMS, get_agent
from diffrl.agents.api import CHOICE_FIELDS, ActionChoice
from diffrl.presets import get_preset, preset_name_for_dataset, preset_names
from diffrl.settings import (
    NonNegativeInt,
    PositiveInt,
    SettingsError,
    field_names,
    parse,
    settings,
)


@settings
class RunConfig:
    """Everything that defines a run besides the agent's own hyperparameters."""

    algo: str = "dql"  # algorithm name (diffrl.agents.ALGORITHMS)
    dataset: Annotated[str, MinLen(1)] = "?"  # d4rl:NAME, minari:ID, FILE.hdf5|npz, bandit:TASK
    env: str | None = None  # gymnasium id to evaluate in; default: the dataset's own env
    preset: str | None = None  # per-task preset name; default: the dataset's name if it has one
    steps: PositiveInt = 1_000_000  # gradient steps
    seed: NonNegativeInt = 0
    batch_size: PositiveInt = 256
    eval_every: PositiveInt = 50_000  # steps between evaluations (and checkpoints)
    eval_episodes: NonNegativeInt = 10  # 0: no evaluation in an environment
    top_k: NonNegativeInt = 1  # offline selection picks the top_k-th smallest bc loss
    # a name of diffrl.data.REWARD_TRANSFORMS; None: the preset's, else the algorithm's default
    reward_transform: str | None = None
    mode: Literal["reference", "clean"] = "reference"  # agent quirks and the selection index
    steps_per_call: PositiveInt = 1000  # updates fused into one jitted lax.scan call
    # evaluation-time action choice (diffrl.acting); None: the algorithm's official default
    selection: Literal["none", "softmax", "argmax"] | None = None
    candidates: PositiveInt | None = None
    policy_output: Literal["sample", "mean"] | None = None
    agent: dict[str, Any] = dataclasses.field(default_factory=dict)  # agent Config overrides

    @pydantic.field_validator("algo", "reward_transform")
    @classmethod
    def _known_name(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        from diffrl.data.transforms import REWARD_TRANSFORMS

        if value is None and info.field_name == "reward_transform":
            return value

        what, valid = {
            "algo": ("algorithm", sorted(ALGORITHMS)),
            "reward_transform": ("reward transform", list(REWARD_TRANSFORMS)),
        }[info.field_name]
        if value not in valid:
            raise ValueError(f"unknown {what}; valid: {', '.join(valid)}")
        return value

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def action_given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CHOICE_FIELDS if getattr(self, k) is not None}


RUN_KEYS = tuple(k for k in field_names(RunConfig) if k != "agent")


def split_settings(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, agent settings) of a flat mapping; an `agent` entry adds agent settings."""
    run = {k: v for k, v in values.items() if k in RUN_KEYS}
    agent = {k: v for k, v in values.items() if k not in RUN_KEYS and k != "agent"}
    return run, {**dict(values.get("agent") or {}), **agent}


def agent_config(cfg: RunConfig, where: str = "settings") -> Any:
    """The agent's Config: its defaults, the run's mode and schedule length, then the overrides."""
    agent = get_agent(cfg.algo)
    fields = set(field_names(agent.Config))
    derived = {"mode": cfg.mode, "total_steps": cfg.steps, "eval_every": cfg.eval_every}
    derived = {k: v for k, v in derived.items() if k in fields}
    return parse(agent.Config, {**derived, **cfg.agent}, f"{where}: {cfg.algo}")


def action_choice(cfg: RunConfig, where: str = "settings") -> ActionChoice:
    return choose(get_agent(cfg.algo), cfg.action_given(), where)


def resolve(values: Mapping[str, Any], where: str = "settings") -> RunConfig:
    """The run a flat mapping of settings describes, with its preset applied under it.

    The preset is the one named by `preset` or, when the algorithm has one, the dataset's own
    name ("none" turns presets off). Keys in `values` win over the preset's; a preset's
    `epochs` (of 1000 steps) sets `steps` unless steps were given.
    """
    run, agent = split_settings(values)
    base = parse(RunConfig, {**run, "agent": agent}, where)
    name = base.preset or _dataset_preset(base)
    if name is None or name == "none":
        return complete(dataclasses.replace(base, preset=None), where)
    preset = get_preset(base.algo, name)
    if "epochs" in preset:
        preset["steps"] = int(preset.pop("epochs")) * 1000
    p_run, p_agent = split_settings({k: v for k, v in preset.items() if k not in values})
    merged = {**p_run, **run, "preset": name, "agent": {**p_agent, **agent}}
    return complete(parse(RunConfig, merged, where), where)


def _dataset_preset(cfg: RunConfig) -> str | None:
    name = preset_name_for_dataset(cfg.dataset)
    return name if name in preset_names(cfg.algo) else None


def complete(cfg: RunConfig, where: str = "settings") -> RunConfig:
    """`cfg` with its agent overrides validated and converted, its action choice and reward
    transform concrete."""
    acfg = agent_config(cfg, where)
    choice = action_choice(cfg, where)
    typed = {k: getattr(acfg, k) for k in cfg.agent}
    rewards = reward_transform(cfg)
    return dataclasses.replace(cfg, agent=typed, reward_transform=rewards, **choice.to_json())


def reward_transform(cfg: RunConfig) -> str:
    """The run's reward transform: the given (or preset's) one, else the algorithm's own default
    (IQL: rewards scaled by 1000 / the episode-return range, as its official locomotion runs),
    except on the built-in bandits, one-step tasks the official recipes do not cover."""
    if cfg.reward_transform is not None:
        return cfg.reward_transform
    if cfg.dataset.startswith("bandit:"):
        return "no"
    return get_agent(cfg.algo).default_reward_transform


def from_record(record: Mapping[str, Any], where: str) -> RunConfig:
    """The RunConfig of a config.json's "run" entry. Older runs stored the action choice with
    the agent's settings; it is moved over to the run."""
    if not isinstance(record, Mapping):
        raise SettingsError(f"{where}: 'run' must be an object, found {type(record).__name__}")
    values = dict(record)
    agent = dict(values.get("agent") or {})
    for key in CHOICE_FIELDS:
        legacy = agent.pop(key, None)
        if legacy is not None and values.get(key) is None:
            values[key] = legacy
    return complete(parse(RunConfig, {**values, "agent": agent}, where), where)
