"""Diffusion Trusted Q-Learning (Chen, Wang & Zhou, 2024), as the official code runs it
(ALGORITHMS.md §2).

Three learned parts: a diffusion behaviour model trained with the EDM loss (never sampled), a
one-step tanh-Gaussian policy (the deployed policy) trained with α·L_TR − min Q, where the
trust-region loss L_TR is the same EDM loss evaluated at the policy's action, and an IQL-style
critic (expectile V, TD Q on V(s'), online networks only).

Per step (§2.5): critic → diffusion BC → one-step policy → critic Polyak (used only to rank
evaluation candidates) → step + 1. The first `pretrain_steps` steps (§2.4, 50 epochs) run only
the critic and BC updates at the base learning rates, so the training loop's checkpoints and
exact resume cover pretraining too.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import optim
from diffrl.agents import dtql_nets
from diffrl.agents.api import ActionChoice, Agent, Batch, Spec
from diffrl.diffusion import edm
from diffrl.optim import LRSchedule
from diffrl.settings import (
    Discount,
    Expectile,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Rate,
    settings,
)

# artanh(a / (a_max + margin)) in the likelihood term: finite at |a| = a_max (official value)
ATANH_MARGIN = 1e-3


@settings
class Config:
    """DTQL hyperparameters; defaults are the official Gym-MuJoCo settings."""

    hidden: PositiveInt = 256  # width of every network's hidden layers
    lr: PositiveFloat = 3e-4  # per-task learning rate of the diffusion model and the policy
    critic_lr: PositiveFloat = 3e-4  # the official code uses 3e-4 for the critic on every task
    # weight of the trust-region loss: 5, the value of 6 of the 9 Gym-MuJoCo presets (1 on
    # HalfCheetah-medium, which let a no-preset Hopper run collapse: docs/decisions.md)
    alpha: NonNegativeFloat = 5.0
    nll_weight: NonNegativeFloat = 0.0  # weight of −log π(a_data|s) (official `gamma`; AntMaze 1)
    expectile: Expectile = 0.7  # IQL expectile τ of the V loss
    gamma: Discount = 0.99  # discount
    tau: Rate = 0.005  # Polyak rate of the critic target (evaluation ranking only)
    clip_denoised: bool = True  # clamp the EDM denoiser output to the action box in the loss
    lr_decay: bool = False  # per-step cosine decay to 0 over the main phase, all optimisers
    pretrain_steps: NonNegativeInt = 50_000  # critic + diffusion-BC steps before the policy
    total_steps: PositiveInt = 1_050_000  # run length including pretraining (cosine period)
    mode: Literal["reference", "clean"] = "reference"  # clean: Mish in the first score layers

    def __post_init__(self) -> None:
        if not 0 <= self.pretrain_steps < self.total_steps:
            raise ValueError(
                f"pretrain_steps ({self.pretrain_steps}) must be below the run's steps "
                f"({self.total_steps}) so that the policy trains: raise --steps, or lower the "
                f"pretraining with --set pretrain_steps=N"
            )

    def lr_at(self, base: float, step: jax.Array) -> jax.Array:
        """Base rate during pretraining (the official schedulers are not stepped there), then a
        per-step cosine over the main phase when `lr_decay`."""
        main = self.total_steps - self.pretrain_steps
        schedule = LRSchedule(base, self.lr_decay, period=main, interval=1)
        return schedule(jnp.maximum(step - self.pretrain_steps, 0))


@struct.dataclass
class State:
    behaviour: Any  # diffusion behaviour model F_φ
    behaviour_opt: Any
    actor: Any  # one-step tanh-Gaussian policy π_θ
    actor_opt: Any
    critic: Any  # {"q", "q_ln", "v"}
    critic_opt: Any
    critic_target: Any
    step: jax.Array


_TX = optim.adam(0.0)  # DTQL clips no gradients


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_bc, k_pi, k_critic = jax.random.split(key, 3)
    behaviour = dtql_nets.score_net_init(k_bc, spec.obs_dim, spec.action_dim, config.hidden)
    actor = dtql_nets.gaussian_policy_init(k_pi, spec.obs_dim, spec.action_dim, config.hidden)
    critic = dtql_nets.iql_critic_init(k_critic, spec.obs_dim, spec.action_dim, config.hidden)
    return State(
        behaviour=behaviour,
        behaviour_opt=_TX.init(behaviour),
        actor=actor,
        actor_opt=_TX.init(actor),
        critic=critic,
        critic_opt=_TX.init(critic),
        critic_target=jax.tree.map(jnp.copy, critic),  # own buffers: the train step donates state
        step=jnp.zeros((), jnp.int32),
    )


# -- the networks as the losses use them --------------------------------------------------------
def edm_loss(
    config: Config, spec: Spec, behaviour: Any, obs: jax.Array, actions: jax.Array, key: jax.Array
) -> jax.Array:
    """The clipped EDM loss of the behaviour model at `actions`: L_bc on dataset actions, L_TR on
    the policy's actions."""

    def score_fn(x: jax.Array, cond: jax.Array, c_noise: jax.Array) -> jax.Array:
        return dtql_nets.score_net_apply(behaviour, x, cond, c_noise, config.mode == "reference")

    return edm.loss(score_fn, actions, obs, key, spec.max_action, config.clip_denoised)


def policy_sample(spec: Spec, actor: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
    """a = a_max·tanh(μ + σξ), clamped to the box (reparameterised)."""
    mean, log_std = dtql_nets.gaussian_policy_apply(actor, obs)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.clip(spec.max_action * jnp.tanh(z), -spec.max_action, spec.max_action)


def policy_mean(spec: Spec, actor: Any, obs: jax.Array) -> jax.Array:
    return spec.max_action * jnp.tanh(dtql_nets.gaussian_policy_apply(actor, obs)[0])


def dataset_log_likelihood(spec: Spec, actor: Any, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """log π(a|s) as coded: the Gaussian density of z = artanh(a/(a_max + 1e-3)), summed over
    dimensions, with no tanh-Jacobian term (§2.1). Used on dataset actions only."""
    mean, log_std = dtql_nets.gaussian_policy_apply(actor, obs)
    z = jnp.arctanh(actions / (spec.max_action + ATANH_MARGIN))
    log_density = -0.5 * ((z - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    return log_density.sum(axis=-1)


# -- losses ---------------------------------------------------------------------------------------
def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """mean[w(u)·u²] with w = τ where u > 0 and 1 − τ elsewhere (IQL's asymmetric L2)."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * diff**2)


def critic_loss(config: Config, critic: Any, batch: Batch) -> tuple[jax.Array, dict]:
    """L_V + L_Q with online networks throughout (§2.3): the expectile loss of V against
    sg(min Q(s, a)), and the TD loss of both Q heads against r + γ·not_done·sg(V(s'))."""
    q = dtql_nets.iql_q_apply(critic, batch.observations, batch.actions)
    v = dtql_nets.iql_v_apply(critic, batch.observations)
    l_v = expectile_loss(jax.lax.stop_gradient(q.min(axis=0)) - v, config.expectile)
    v_next = jax.lax.stop_gradient(dtql_nets.iql_v_apply(critic, batch.next_observations))
    y = batch.rewards + config.gamma * batch.not_done * v_next
    l_q = ((q - y[None]) ** 2).mean(axis=1).sum()
    return l_v + l_q, {
        "value/loss": l_v,
        "critic/td_loss": l_q,
        "critic/q_data": q.mean(),
        "value/v_data": v.mean(),
    }


def policy_loss(
    config: Config, spec: Spec, actor: Any, state: State, batch: Batch, key: jax.Array
) -> tuple[jax.Array, dict]:
    """α·L_TR − mean min Q(s, a_θ) + nll_weight·(−mean log π(a_data|s)); only θ is trained."""
    k_pi, k_tr = jax.random.split(key)
    obs = batch.observations
    a_pi = policy_sample(spec, actor, obs, k_pi)
    l_tr = edm_loss(config, spec, state.behaviour, obs, a_pi, k_tr)
    q_pi = dtql_nets.iql_q_apply(state.critic, obs, a_pi).min(axis=0).mean()
    terms = {"actor/tr_loss": l_tr, "actor/q_policy": q_pi}
    loss = config.alpha * l_tr - q_pi
    if config.nll_weight != 0.0:
        nll = -dataset_log_likelihood(spec, actor, obs, batch.actions).mean()
        loss = loss + config.nll_weight * nll
        terms["actor/nll_loss"] = nll
    return loss, terms


# -- one gradient step --------------------------------------------------------------------------
def update_critic(config: Config, state: State, batch: Batch) -> tuple[State, dict]:
    (loss, aux), grads = jax.value_and_grad(lambda c: critic_loss(config, c, batch), has_aux=True)(
        state.critic
    )
    lr = config.lr_at(config.critic_lr, state.step)
    critic, opt, gnorm = optim.optimizer_step(_TX, grads, state.critic_opt, state.critic, lr)
    return state.replace(critic=critic, critic_opt=opt), {
        "critic/loss": loss,
        "critic/grad_norm": gnorm,
        **aux,
    }


def update_behaviour(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    loss, grads = jax.value_and_grad(
        lambda p: edm_loss(config, spec, p, batch.observations, batch.actions, key)
    )(state.behaviour)
    lr = config.lr_at(config.lr, state.step)
    params, opt, _ = optim.optimizer_step(_TX, grads, state.behaviour_opt, state.behaviour, lr)
    return state.replace(behaviour=params, behaviour_opt=opt), {
        "behaviour/bc_loss": loss,
        "behaviour/lr": lr,
    }


def update_policy(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    """One policy step, then the critic target's Polyak update (both skipped in pretraining)."""
    (loss, aux), grads = jax.value_and_grad(
        lambda a: policy_loss(config, spec, a, state, batch, key), has_aux=True
    )(state.actor)
    lr = config.lr_at(config.lr, state.step)
    actor, opt, gnorm = optim.optimizer_step(_TX, grads, state.actor_opt, state.actor, lr)
    target = optim.polyak(state.critic_target, state.critic, config.tau)
    state = state.replace(actor=actor, actor_opt=opt, critic_target=target)
    return state, {"actor/loss": loss, "actor/grad_norm": gnorm, **aux}


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    k_bc, k_pi = jax.random.split(key)
    state, m_critic = update_critic(config, state, batch)
    state, m_bc = update_behaviour(config, spec, state, batch, k_bc)

    def main(s: State) -> tuple[State, dict]:
        return update_policy(config, spec, s, batch, k_pi)

    def pretrain(s: State) -> tuple[State, dict]:
        # the policy metrics are NaN here; the loop's nanmean skips them (train.py)
        shapes = jax.eval_shape(main, s)[1]
        return s, jax.tree.map(lambda x: jnp.full(x.shape, jnp.nan, x.dtype), shapes)

    state, m_pi = jax.lax.cond(state.step >= config.pretrain_steps, main, pretrain, state)
    metrics = {**m_critic, **m_bc, **m_pi}
    metrics["train/pretraining"] = (state.step < config.pretrain_steps).astype(jnp.float32)
    return state.replace(step=state.step + 1), metrics


# -- acting -----------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """A tanh-Gaussian draw of the one-step policy."""
    return policy_sample(spec, state.actor, obs, key)


def mean_action(config: Config, spec: Spec, state: State, obs: jax.Array) -> jax.Array:
    """a_max·tanh(μ(s)), the one-step policy without its noise."""
    return policy_mean(spec, state.actor, obs)


def q_value(config: Config, state: State, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """The target critic's min-Q, by which the official evaluation ranks candidates."""
    return dtql_nets.iql_q_apply(state.critic_target, obs, actions).min(axis=0)


def policy_state(state: State, ranked: bool) -> State:
    """The state without what acting never reads (behaviour model, optimisers, online critic;
    the target critic too when no candidates are ranked)."""
    return state.replace(
        behaviour=None,
        behaviour_opt=None,
        actor_opt=None,
        critic=None,
        critic_opt=None,
        critic_target=state.critic_target if ranked else None,
    )


# the official evaluation: 1 024 policy samples per state, one drawn from softmax(Q)
AGENT = Agent(
    name="dtql",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    mean_action=mean_action,
    q_value=q_value,
    policy_state=policy_state,
    # offline selection ranks by the EDM behaviour-cloning loss of the diffusion model
    selection_metric="behaviour/bc_loss",
    default_choice=ActionChoice(selection="softmax", candidates=1024),
)
