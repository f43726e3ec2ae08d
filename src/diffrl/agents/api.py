"""The agent contract, declared once: what every algorithm gives the loop and the action choice.

An algorithm module defines a `Config` (a frozen `diffrl.settings` dataclass), a `State` (a
pytree) and pure functions, and ends with `AGENT = Agent(...)` naming them. The loop, the
evaluators and `diffrl eval` use an agent only through these fields; nothing is probed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import numpy as np

from diffrl.settings import PositiveInt, settings


class Spec(NamedTuple):
    """What an agent needs to know about the data: sizes and the action box."""

    obs_dim: int
    action_dim: int
    max_action: float = 1.0


class Batch(NamedTuple):
    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    not_done: jax.Array


SELECTIONS = ("none", "softmax", "argmax")
POLICY_OUTPUTS = ("sample", "mean")
CHOICE_FIELDS = ("selection", "candidates", "policy_output")


@settings
class ActionChoice:
    """How a trained policy picks its action at evaluation time."""

    selection: Literal["none", "softmax", "argmax"] = "none"  # rank candidates by Q, or not
    candidates: PositiveInt = 1  # draws per state ranked when selection is softmax | argmax
    policy_output: Literal["sample", "mean"] = "sample"  # selection none: a draw or the mean

    @property
    def ranked(self) -> bool:
        """Whether candidates are ranked (one candidate is the plain policy)."""
        return self.selection != "none" and self.candidates > 1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Key = jax.Array
Metrics = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Agent:
    """One algorithm, as the rest of the library sees it.

    `update` is pure and jittable (`(config, spec, state, batch, key) -> (state, metrics)`;
    metrics are scalars, NaN where a step did not compute one). `sample` draws one action per
    state (the policy's own noise; deterministic policies return their action). `policy_state`
    drops what acting never reads (`ranked`: candidates are ranked, so keep what `q_value`
    reads). `selection_metric` is the training metric offline model selection ranks by.
    """

    name: str
    Config: type
    State: type
    init: Callable[[Any, Spec, Key], Any]
    update: Callable[[Any, Spec, Any, Batch, Key], tuple[Any, Metrics]]
    sample: Callable[[Any, Spec, Any, jax.Array, Key], jax.Array]
    policy_state: Callable[[Any, bool], Any]
    selection_metric: str
    default_choice: ActionChoice = ActionChoice()
    # the reward transform of a run that has no preset and gives none (diffrl.data)
    default_reward_transform: str = "no"
    deterministic: bool = False  # `sample` ignores its key (TD3+BC's actor)
    # min over critic heads of the target Q of (obs, actions): (B,); None: cannot rank
    q_value: Callable[[Any, Any, jax.Array, jax.Array], jax.Array] | None = None
    # the policy's deterministic output; None: it has none besides `sample`
    mean_action: Callable[[Any, Spec, Any, jax.Array], jax.Array] | None = None
    # statistics of the training data kept in the state (TD3+BC's state normalisation)
    with_data: Callable[[Any, Any, np.ndarray], Any] | None = None
