"""Gaussian behaviour cloning: maximum likelihood of the dataset's actions (docs/baselines.md).

The policy is a plain Gaussian N(μ(s), σ(s)²) with μ = a_max·tanh(·) and a clamped log σ, from a
256-256 ReLU network. It is not tanh-squashed: dataset actions often sit exactly on the box
boundary, where a squashed density needs artanh(±1) and an ε fudge that dominates the loss, while
a plain Gaussian's likelihood is finite everywhere. Samples are clipped to the box.

Per step: one Adam step on −mean log π(a|s) → step + 1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets, optim
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.settings import PositiveFloat, PositiveInt, settings


@settings
class Config:
    """Behaviour-cloning hyperparameters (the usual D4RL baseline setup: 256-256, Adam 3e-4)."""

    hidden: PositiveInt = 256  # width of the two hidden layers
    layers: PositiveInt = 2  # number of hidden layers
    lr: PositiveFloat = 3e-4  # Adam learning rate
    grad_norm: float = 0.0  # global grad-norm clip; ≤ 0 disables


@struct.dataclass
class State:
    actor: Any  # Gaussian policy π(a|s)
    actor_opt: Any
    step: jax.Array


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    actor = nets.gaussian_actor_init(
        key, spec.obs_dim, spec.action_dim, config.hidden, config.layers
    )
    return State(
        actor=actor,
        actor_opt=optim.adam(config.grad_norm).init(actor),
        step=jnp.zeros((), jnp.int32),
    )


def nll(spec: Spec, actor: Any, obs: jax.Array, actions: jax.Array) -> tuple[jax.Array, dict]:
    """−mean log π(a|s) over the batch (log-density summed over action dimensions)."""
    mean, log_std = nets.gaussian_actor_apply(actor, obs, spec.max_action)
    loss = -nets.gaussian_log_prob(mean, log_std, actions).mean()
    return loss, {"actor/bc_loss": loss, "actor/policy_std": jnp.exp(log_std).mean()}


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    del key  # the loss draws nothing
    actor, opt, aux = optim.gradient_step(
        lambda p: nll(spec, p, batch.observations, batch.actions),
        state.actor,
        state.actor_opt,
        optim.adam(config.grad_norm),
        jnp.float32(config.lr),
    )
    metrics = {
        "actor/bc_loss": aux["actor/bc_loss"],
        "actor/policy_std": aux["actor/policy_std"],
        "actor/grad_norm": aux["gn"],
    }
    return state.replace(actor=actor, actor_opt=opt, step=state.step + 1), metrics


def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """A Gaussian draw clipped to the box."""
    return nets.gaussian_actor_action(state.actor, obs, spec.max_action, key)


def mean_action(config: Config, spec: Spec, state: State, obs: jax.Array) -> jax.Array:
    """The Gaussian's mean."""
    return nets.gaussian_actor_apply(state.actor, obs, spec.max_action)[0]


def policy_state(state: State, ranked: bool) -> State:
    """The state without the optimiser state (no critic: no candidates are ranked)."""
    return state.replace(actor_opt=None)


AGENT = Agent(
    name="bc",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    mean_action=mean_action,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # the negative log-likelihood of dataset actions
)
