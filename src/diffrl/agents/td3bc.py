"""TD3+BC (Fujimoto & Gu, NeurIPS 2021), as the official code runs it (docs/baselines.md).

TD3 with a behaviour-cloning term in the actor loss: maximise λ·Q₁(s, π(s)) − (π(s) − a)² with
λ = α / mean|Q₁(s, π(s))| (detached). Twin critics learn from target-policy-smoothed next actions;
the actor and both target networks move every `policy_freq` steps. States are normalised by the
dataset's mean and std (+ 1e-3), in training and when acting: `with_data` stores the statistics
in the state, so checkpoints carry them.

Per step: critic update → [if (step + 1) % policy_freq == 0: actor update, Polyak of the actor
and critic targets] → step + 1. The official counter is incremented before the check, so the
first actor update falls on the second step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from diffrl import nets, optim
from diffrl.agents import common
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.settings import Discount, NonNegativeFloat, PositiveFloat, PositiveInt, Rate, settings


@settings
class Config:
    """TD3+BC hyperparameters; defaults are the paper's (the same for every D4RL MuJoCo task)."""

    hidden: PositiveInt = 256  # width of the two hidden layers of actor and critics
    actor_lr: PositiveFloat = 3e-4  # Adam learning rate of the actor
    critic_lr: PositiveFloat = 3e-4  # Adam learning rate of the twin critic
    alpha: NonNegativeFloat = 2.5  # α: the Q term's weight is λ = α / mean|Q|
    gamma: Discount = 0.99  # discount
    tau: Rate = 0.005  # Polyak rate of the actor and critic targets
    policy_noise: NonNegativeFloat = 0.2  # std of the target-policy smoothing noise (× max_action)
    noise_clip: NonNegativeFloat = 0.5  # smoothing noise clipped to ±noise_clip (× max_action)
    policy_freq: PositiveInt = 2  # actor and targets are updated every policy_freq steps
    normalize_states: bool = True  # normalise states by the dataset's mean / (std + eps)
    normalize_eps: PositiveFloat = 1e-3  # eps added to the std


@struct.dataclass
class State:
    actor: Any  # deterministic policy π(s) = a_max·tanh(·)
    actor_opt: Any
    actor_target: Any
    critic: Any  # twin Q, stacked heads
    critic_opt: Any
    critic_target: Any
    obs_mean: jax.Array  # state normalisation (zeros / ones until `with_data`)
    obs_std: jax.Array
    step: jax.Array


_TX = optim.adam(0.0)  # TD3+BC clips no gradients


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_actor, k_critic = jax.random.split(key)
    h = config.hidden
    actor = nets.mlp_init(k_actor, [spec.obs_dim, h, h, spec.action_dim])
    critic = nets.critic_init(k_critic, spec.obs_dim, spec.action_dim, h, layers=2)
    return State(
        actor=actor,
        actor_opt=_TX.init(actor),
        actor_target=jax.tree.map(jnp.copy, actor),  # own buffers: the train step donates state
        critic=critic,
        critic_opt=_TX.init(critic),
        critic_target=jax.tree.map(jnp.copy, critic),
        obs_mean=jnp.zeros((spec.obs_dim,), jnp.float32),
        obs_std=jnp.ones((spec.obs_dim,), jnp.float32),
        step=jnp.zeros((), jnp.int32),
    )


def with_data(config: Config, state: State, observations: np.ndarray) -> State:
    """The state with the dataset's observation statistics (called once, before training)."""
    if not config.normalize_states:
        return state
    mean, std = common.observation_stats(observations, config.normalize_eps)
    return state.replace(obs_mean=mean, obs_std=std)


# -- the networks -------------------------------------------------------------------------------
def policy(spec: Spec, actor: Any, obs: jax.Array) -> jax.Array:
    """π(s) = a_max·tanh(MLP(s)) on normalised states."""
    return spec.max_action * jnp.tanh(nets.mlp(actor, obs, act=jax.nn.relu))


def q_values(critic: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """(Q₁, Q₂), shape (2, B)."""
    return nets.critic_apply(critic, obs, actions, act=jax.nn.relu)


def normalized_batch(state: State, batch: Batch) -> Batch:
    def norm(obs: jax.Array) -> jax.Array:
        return common.normalize_obs(obs, state.obs_mean, state.obs_std)

    return batch._replace(
        observations=norm(batch.observations), next_observations=norm(batch.next_observations)
    )


# -- losses -------------------------------------------------------------------------------------
def smoothing_noise(
    config: Config, spec: Spec, key: jax.Array, shape: tuple[int, ...]
) -> jax.Array:
    """N(0, (policy_noise·a_max)²) clipped to ±noise_clip·a_max."""
    noise = jax.random.normal(key, shape) * config.policy_noise * spec.max_action
    limit = config.noise_clip * spec.max_action
    return jnp.clip(noise, -limit, limit)


def critic_targets(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> jax.Array:
    """r + γ·not_done·min Q'(s', clip(π'(s') + noise, box))."""
    next_pi = policy(spec, state.actor_target, batch.next_observations)
    noise = smoothing_noise(config, spec, key, next_pi.shape)
    next_a = jnp.clip(next_pi + noise, -spec.max_action, spec.max_action)
    target_q = q_values(state.critic_target, batch.next_observations, next_a)
    return common.bellman_target(batch.rewards, batch.not_done, target_q, config.gamma)


def q_weight(alpha: float, q: jax.Array) -> jax.Array:
    """λ = α / mean|Q|, detached."""
    return alpha / jax.lax.stop_gradient(jnp.abs(q).mean())


def actor_loss(
    config: Config, spec: Spec, actor: Any, critic: Any, batch: Batch
) -> tuple[jax.Array, dict]:
    """−λ·mean Q₁(s, π(s)) + mean (π(s) − a)²."""
    pi = policy(spec, actor, batch.observations)
    q = q_values(critic, batch.observations, pi)[0]
    lam = q_weight(config.alpha, q)
    bc = jnp.mean((pi - batch.actions) ** 2)
    loss = -lam * q.mean() + bc
    return loss, {"actor/bc_loss": bc, "actor/q_policy": q.mean(), "actor/q_weight": lam}


# -- one gradient step ----------------------------------------------------------------------------
def update_critic(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    y = critic_targets(config, spec, state, batch, key)

    def loss_fn(critic: Any) -> tuple[jax.Array, dict]:
        q = q_values(critic, batch.observations, batch.actions)
        return ((q - y[None]) ** 2).mean(axis=1).sum(), {"critic/q_data": q.mean()}

    critic, opt, aux = optim.gradient_step(
        loss_fn, state.critic, state.critic_opt, _TX, jnp.float32(config.critic_lr)
    )
    metrics = {
        "critic/loss": aux["loss"],
        "critic/q_data": aux["critic/q_data"],
        "critic/target_q": y.mean(),
        "critic/grad_norm": aux["gn"],
    }
    return state.replace(critic=critic, critic_opt=opt), metrics


def update_actor(config: Config, spec: Spec, state: State, batch: Batch) -> tuple[State, dict]:
    """One actor step, then the Polyak updates of both targets."""
    actor, opt, aux = optim.gradient_step(
        lambda a: actor_loss(config, spec, a, state.critic, batch),
        state.actor,
        state.actor_opt,
        _TX,
        jnp.float32(config.actor_lr),
    )
    state = state.replace(
        actor=actor,
        actor_opt=opt,
        actor_target=optim.polyak(state.actor_target, actor, config.tau),
        critic_target=optim.polyak(state.critic_target, state.critic, config.tau),
    )
    metrics = {
        "actor/loss": aux["loss"],
        "actor/grad_norm": aux["gn"],
        "actor/bc_loss": aux["actor/bc_loss"],
        "actor/q_policy": aux["actor/q_policy"],
        "actor/q_weight": aux["actor/q_weight"],
    }
    return state, {**metrics, "train/policy_update": jnp.float32(1.0)}


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    batch = normalized_batch(state, batch)
    state, m_critic = update_critic(config, spec, state, batch, key)

    def skip(s: State) -> tuple[State, dict]:
        # NaN actor metrics off actor steps: the loop's chunk means skip them
        metrics = common.nan_metrics(lambda s: update_actor(config, spec, s, batch)[1], s)
        return s, {**metrics, "train/policy_update": jnp.float32(0.0)}

    state, m_actor = jax.lax.cond(
        (state.step + 1) % config.policy_freq == 0,
        lambda s: update_actor(config, spec, s, batch),
        skip,
        state,
    )
    return state.replace(step=state.step + 1), {**m_critic, **m_actor}


# -- acting -------------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """π(normalised s): deterministic, as the official evaluation (no exploration noise)."""
    del key
    return policy(spec, state.actor, common.normalize_obs(obs, state.obs_mean, state.obs_std))


def policy_state(state: State, ranked: bool) -> State:
    """The actor and the state statistics only (a deterministic actor ranks no candidates)."""
    return state.replace(
        actor_opt=None, actor_target=None, critic=None, critic_opt=None, critic_target=None
    )


AGENT = Agent(
    name="td3bc",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # the actor's BC term, the MSE to dataset actions
    with_data=with_data,
    deterministic=True,
)
