"""Implicit Q-Learning (Kostrikov, Nair & Levine, ICLR 2022), as the official code runs it
(docs/baselines.md).

V learns an upper expectile of the target critic's min Q over dataset actions; Q learns
r + γ·V(s'); the policy is extracted by advantage-weighted regression: a Gaussian actor (tanh on
the mean, a state-independent log σ, no squashing) maximises exp(β·(Q_target − V))-weighted
log-likelihood of dataset actions, weights clipped at 100. No network ever sees a policy action.

Per step, as the official `_update_jit`: V update (target critic) → actor update (target critic,
new V) → Q update (new V) → Polyak of the critic target → step + 1. Networks are 256-256 ReLU
with orthogonal(√2) weights and zero biases (JAXRL's `default_init`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets, optim
from diffrl.agents import dtql
from diffrl.agents.api import ActionChoice, Agent, Batch, Spec
from diffrl.optim import LRSchedule
from diffrl.settings import (
    Discount,
    Expectile,
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Rate,
    settings,
)

expectile_loss = dtql.expectile_loss  # mean[|τ − 1(u < 0)|·u²], IQL's asymmetric L2


@settings
class Config:
    """IQL hyperparameters; defaults are the official Gym-MuJoCo settings."""

    hidden: PositiveInt = 256  # width of the two hidden layers of every network
    actor_lr: PositiveFloat = 3e-4  # base Adam learning rate of the actor (cosine-decayed)
    critic_lr: PositiveFloat = 3e-4  # Adam learning rate of the twin Q
    value_lr: PositiveFloat = 3e-4  # Adam learning rate of V
    expectile: Expectile = 0.7  # τ of the expectile loss of V
    temperature: NonNegativeFloat = 3.0  # β: advantage weights exp(β·(Q − V))
    max_weight: PositiveFloat = 100.0  # advantage weights are clipped at this value
    gamma: Discount = 0.99  # discount
    tau: Rate = 0.005  # Polyak rate of the critic target
    actor_dropout: Fraction = 0.0  # dropout in the actor's hidden layers (Kitchen/Adroit: 0.1)
    lr_decay: bool = True  # cosine decay of the actor's learning rate to 0 over total_steps
    total_steps: PositiveInt = 1_000_000  # length of training, for the actor's schedule

    def actor_schedule(self) -> LRSchedule:
        """optax.cosine_decay_schedule(actor_lr, total_steps), as the official actor optimiser."""
        return LRSchedule(self.actor_lr, self.lr_decay, period=self.total_steps, interval=1)


@struct.dataclass
class State:
    actor: Any  # Gaussian policy {"trunk", "log_std"}
    actor_opt: Any
    critic: Any  # twin Q, stacked heads
    critic_opt: Any
    critic_target: Any
    value: Any  # V(s)
    value_opt: Any
    step: jax.Array


_TX = optim.adam(0.0)  # IQL clips no gradients


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_actor, k_critic, k_value = jax.random.split(key, 3)
    s, a, h = spec.obs_dim, spec.action_dim, config.hidden
    actor = nets.gaussian_actor_init(
        k_actor, s, a, h, 2, state_dependent_std=False, init="orthogonal"
    )
    critic = nets.critic_init(k_critic, s, a, h, layers=2, init="orthogonal")
    value = nets.mlp_init(k_value, [s, h, h, 1], init="orthogonal")
    return State(
        actor=actor,
        actor_opt=_TX.init(actor),
        critic=critic,
        critic_opt=_TX.init(critic),
        critic_target=jax.tree.map(jnp.copy, critic),  # own buffers: the train step donates state
        value=value,
        value_opt=_TX.init(value),
        step=jnp.zeros((), jnp.int32),
    )


# -- the networks -------------------------------------------------------------------------------
def q_values(critic: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """(Q₁, Q₂), shape (2, B)."""
    return nets.critic_apply(critic, obs, actions, act=jax.nn.relu)


def v_value(value: Any, obs: jax.Array) -> jax.Array:
    return nets.mlp(value, obs, act=jax.nn.relu)[..., 0]


# -- losses -------------------------------------------------------------------------------------
def advantage_weights(
    q: jax.Array, v: jax.Array, temperature: float, max_weight: float
) -> jax.Array:
    """min(exp(β·(Q − V)), max_weight), detached."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp((q - v) * temperature), max_weight))


def value_loss(
    config: Config, value: Any, q_min: jax.Array, obs: jax.Array
) -> tuple[jax.Array, dict]:
    v = v_value(value, obs)
    return expectile_loss(q_min - v, config.expectile), {"value/v_data": v.mean()}


def actor_loss(
    config: Config,
    spec: Spec,
    actor: Any,
    critic_target: Any,
    value: Any,
    batch: Batch,
    key: jax.Array,
) -> tuple[jax.Array, dict]:
    """−mean w·log π(a|s) with w the clipped advantage weights (no gradient to Q or V). The
    plain NLL −mean log π(a|s) of the same forward pass is reported as `bc_loss`."""
    obs = batch.observations
    q = jax.lax.stop_gradient(q_values(critic_target, obs, batch.actions).min(axis=0))
    v = jax.lax.stop_gradient(v_value(value, obs))
    w = advantage_weights(q, v, config.temperature, config.max_weight)
    mean, log_std = nets.gaussian_actor_apply(
        actor, obs, spec.max_action, config.actor_dropout, key
    )
    log_prob = nets.gaussian_log_prob(mean, log_std, batch.actions)
    return -(w * log_prob).mean(), {
        "actor/bc_loss": -log_prob.mean(),
        "actor/adv_mean": (q - v).mean(),
        "actor/weight_mean": w.mean(),
        "actor/weight_clipped": (w >= config.max_weight).astype(jnp.float32).mean(),
    }


def critic_loss(config: Config, critic: Any, value: Any, batch: Batch) -> tuple[jax.Array, dict]:
    """Σ_heads mean (Q_i(s, a) − (r + γ·not_done·V(s')))²."""
    y = batch.rewards + config.gamma * batch.not_done * v_value(value, batch.next_observations)
    q = q_values(critic, batch.observations, batch.actions)
    loss = ((q - jax.lax.stop_gradient(y)[None]) ** 2).mean(axis=1).sum()
    return loss, {"critic/q_data": q.mean(), "critic/target_q": y.mean()}


# -- one gradient step ----------------------------------------------------------------------------
def update_value(config: Config, state: State, batch: Batch) -> tuple[State, dict]:
    q_min = q_values(state.critic_target, batch.observations, batch.actions).min(axis=0)
    value, opt, aux = optim.gradient_step(
        lambda p: value_loss(config, p, q_min, batch.observations),
        state.value,
        state.value_opt,
        _TX,
        jnp.float32(config.value_lr),
    )
    metrics = {"value/loss": aux["loss"], "value/v_data": aux["value/v_data"]}
    return state.replace(value=value, value_opt=opt), metrics


def update_actor(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    lr = config.actor_schedule()(state.step)
    actor, opt, aux = optim.gradient_step(
        lambda p: actor_loss(config, spec, p, state.critic_target, state.value, batch, key),
        state.actor,
        state.actor_opt,
        _TX,
        lr,
    )
    metrics = {
        k: aux[k]
        for k in ("actor/bc_loss", "actor/adv_mean", "actor/weight_mean", "actor/weight_clipped")
    }
    metrics |= {"actor/loss": aux["loss"], "actor/grad_norm": aux["gn"], "actor/lr": lr}
    return state.replace(actor=actor, actor_opt=opt), metrics


def update_critic(config: Config, state: State, batch: Batch) -> tuple[State, dict]:
    critic, opt, aux = optim.gradient_step(
        lambda p: critic_loss(config, p, state.value, batch),
        state.critic,
        state.critic_opt,
        _TX,
        jnp.float32(config.critic_lr),
    )
    target = optim.polyak(state.critic_target, critic, config.tau)
    metrics = {
        "critic/loss": aux["loss"],
        "critic/q_data": aux["critic/q_data"],
        "critic/target_q": aux["critic/target_q"],
    }
    return state.replace(critic=critic, critic_opt=opt, critic_target=target), metrics


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    state, m_value = update_value(config, state, batch)
    state, m_actor = update_actor(config, spec, state, batch, key)
    state, m_critic = update_critic(config, state, batch)
    return state.replace(step=state.step + 1), {**m_value, **m_actor, **m_critic}


# -- acting -------------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """A draw of the Gaussian actor, clipped to the box."""
    return nets.gaussian_actor_action(state.actor, obs, spec.max_action, key)


def mean_action(config: Config, spec: Spec, state: State, obs: jax.Array) -> jax.Array:
    """The actor's mean (the official evaluation: temperature 0)."""
    return nets.gaussian_actor_apply(state.actor, obs, spec.max_action)[0]


def q_value(config: Config, state: State, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """The target critic's min-Q (ranking candidates is an option, not the official rule)."""
    return q_values(state.critic_target, obs, actions).min(axis=0)


def policy_state(state: State, ranked: bool) -> State:
    """The actor only, and the target critic when candidates are ranked."""
    return state.replace(
        actor_opt=None,
        critic=None,
        critic_opt=None,
        critic_target=state.critic_target if ranked else None,
        value=None,
        value_opt=None,
    )


AGENT = Agent(
    name="iql",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    mean_action=mean_action,
    q_value=q_value,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # the actor's plain NLL of dataset actions
    default_choice=ActionChoice(policy_output="mean"),
    # without a preset, the official Gym-MuJoCo scaling: β = 3 assumes rewards on that scale
    default_reward_transform="iql_locomotion",
)
