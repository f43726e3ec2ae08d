"""Soft Actor-Critic (Haarnoja et al. 2018, with automatic temperature) as pure JAX functions.

The behaviour agent of the dataset builder: twin critics and a tanh-Gaussian actor, both 256-256
ReLU MLPs, Adam at 3e-4, batch 256, τ = 0.005, γ = 0.99, temperature α trained towards an entropy
of −action_dim. Actions are in [−1, 1] inside the agent; `ActionScale` maps them to the env's box.

One compiled call (`learn_and_act`) does one gradient update and then samples the action for the
next environment step with the updated actor, so an env step costs one dispatch. Fusing several
updates into one `lax.scan` would not save more: the next action depends on the next observation,
so the actor must be called once per env step anyway, and the update itself dominates (measured,
docs/datasets.md).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl.nets import LOG_STD_MAX, LOG_STD_MIN, mlp, mlp_init
from diffrl.optim import adam, optimizer_step, polyak


@dataclasses.dataclass(frozen=True)
class Config:
    hidden: int = 256  # units in each of the two hidden layers (actor and both critics)
    lr: float = 3e-4  # Adam learning rate of actor, critics and temperature
    batch_size: int = 256  # transitions per gradient update
    tau: float = 0.005  # Polyak rate of the target critics
    gamma: float = 0.99  # discount
    init_alpha: float = 1.0  # initial entropy temperature
    target_entropy: float | None = None  # None: −action_dim


@struct.dataclass
class State:
    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    key: jax.Array
    step: jax.Array


@struct.dataclass
class ActionScale:
    """Env action = center + half · agent action (the env's Box, per dimension)."""

    center: jax.Array
    half: jax.Array


_TX = adam(0.0)  # Adam's direction, no clipping; the learning rate is applied by optimizer_step


def init(config: Config, obs_dim: int, action_dim: int, key: jax.Array) -> State:
    k_actor, k_critic, k_state = jax.random.split(key, 3)
    h = config.hidden
    actor = mlp_init(k_actor, [obs_dim, h, h, 2 * action_dim])
    critic = mlp_init(k_critic, [obs_dim + action_dim, h, h, 1], stack=(2,))
    log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
    return State(
        actor=actor,
        critic=critic,
        target_critic=jax.tree.map(jnp.copy, critic),
        log_alpha=log_alpha,
        actor_opt=_TX.init(actor),
        critic_opt=_TX.init(critic),
        alpha_opt=_TX.init(log_alpha),
        key=k_state,
        step=jnp.zeros((), jnp.int32),
    )


# -- networks -----------------------------------------------------------------------------------
def q_values(critic: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
    """(Q1, Q2), shape (2, B): the stacked heads run as one vmapped MLP."""
    x = jnp.concatenate([obs, action], axis=-1)
    return jax.vmap(lambda p: mlp(p, x, act=jax.nn.relu)[..., 0])(critic)


def actor_dist(actor: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean, log_std = jnp.split(mlp(actor, obs, act=jax.nn.relu), 2, axis=-1)
    return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def sample_action(actor: Any, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """tanh-Gaussian sample in [−1, 1] and its log-density (change of variables included)."""
    mean, log_std = actor_dist(actor, obs)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    gauss = -0.5 * jnp.square((u - mean) / jnp.exp(log_std)) - log_std - 0.5 * math.log(2 * math.pi)
    # log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)), stable for large |u|
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), (gauss - log_det).sum(axis=-1)


def deterministic_action(actor: Any, obs: jax.Array) -> jax.Array:
    return jnp.tanh(actor_dist(actor, obs)[0])


# -- the update -----------------------------------------------------------------------------------
def _critic_loss(critic, state: State, config: Config, batch: dict, key: jax.Array):
    next_a, next_logp = sample_action(state.actor, batch["next_observations"], key)
    alpha = jnp.exp(state.log_alpha)
    next_q = q_values(state.target_critic, batch["next_observations"], next_a).min(axis=0)
    not_done = 1.0 - batch["terminals"]
    y = batch["rewards"] + config.gamma * not_done * (next_q - alpha * next_logp)
    q = q_values(critic, batch["observations"], batch["actions"])
    loss = 0.5 * jnp.square(q - jax.lax.stop_gradient(y)).mean(axis=1).sum()
    return loss, q.mean()


def _actor_loss(actor, critic, log_alpha, obs: jax.Array, key: jax.Array):
    a, logp = sample_action(actor, obs, key)
    q = q_values(critic, obs, a).min(axis=0)
    return (jnp.exp(log_alpha) * logp - q).mean(), logp


def update(config: Config, state: State, batch: dict, target_entropy: float) -> tuple[State, dict]:
    """One SAC step on a batch whose actions are already in [−1, 1]. Pure and jittable."""
    key, k_critic, k_actor = jax.random.split(state.key, 3)
    lr = jnp.asarray(config.lr, jnp.float32)
    (c_loss, q_mean), c_grads = jax.value_and_grad(_critic_loss, has_aux=True)(
        state.critic, state, config, batch, k_critic
    )
    critic, critic_opt, _ = optimizer_step(_TX, c_grads, state.critic_opt, state.critic, lr)
    (a_loss, logp), a_grads = jax.value_and_grad(_actor_loss, has_aux=True)(
        state.actor, critic, state.log_alpha, batch["observations"], k_actor
    )
    actor, actor_opt, _ = optimizer_step(_TX, a_grads, state.actor_opt, state.actor, lr)
    entropy_gap = jax.lax.stop_gradient(logp + target_entropy).mean()
    alpha_grad = -entropy_gap  # d/dlogα of −logα · mean(logπ + H̄)
    log_alpha, alpha_opt, _ = optimizer_step(_TX, alpha_grad, state.alpha_opt, state.log_alpha, lr)
    new = state.replace(
        actor=actor,
        critic=critic,
        target_critic=polyak(state.target_critic, critic, config.tau),
        log_alpha=log_alpha,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        alpha_opt=alpha_opt,
        key=key,
        step=state.step + 1,
    )
    metrics = {
        "critic/loss": c_loss,
        "critic/q_data": q_mean,
        "actor/loss": a_loss,
        "actor/entropy": -logp.mean(),
        "temperature/alpha": jnp.exp(log_alpha),
    }
    return new, metrics


def to_agent(scale: ActionScale, env_actions: jax.Array) -> jax.Array:
    return (env_actions - scale.center) / scale.half


def to_env(scale: ActionScale, actions: jax.Array) -> jax.Array:
    return scale.center + scale.half * actions


@partial(jax.jit, static_argnames=("config", "target_entropy"), donate_argnums=(1,))
def learn_and_act(
    config: Config,
    state: State,
    batch: dict,
    obs: jax.Array,
    scale: ActionScale,
    target_entropy: float,
) -> tuple[State, jax.Array, dict]:
    """One update on `batch` (env-scale actions), then a sampled env action for `obs` (S,)."""
    batch = dict(batch, actions=to_agent(scale, batch["actions"]))
    state, metrics = update(config, state, batch, target_entropy)
    action = stochastic_env_action(state.actor, obs, jax.random.fold_in(state.key, 1), scale)
    return state, action, metrics


def stochastic_env_action(
    actor: Any, obs: jax.typing.ArrayLike, key: jax.Array, scale: ActionScale
) -> jax.Array:
    """A tanh-Gaussian sample mapped to the env box (works for (S,) and (B, S) inputs)."""
    return to_env(scale, sample_action(actor, obs, key)[0])


@jax.jit
def jit_stochastic_action(
    actor: Any, obs: jax.typing.ArrayLike, key: jax.Array, scale: ActionScale
) -> jax.Array:
    return stochastic_env_action(actor, obs, key, scale)


@jax.jit
def jit_deterministic_action(
    actor: Any, obs: jax.typing.ArrayLike, scale: ActionScale
) -> jax.Array:
    return to_env(scale, deterministic_action(actor, obs))


def target_entropy_of(config: Config, action_dim: int) -> float:
    return float(-action_dim if config.target_entropy is None else config.target_entropy)
