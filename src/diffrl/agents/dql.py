"""Diffusion-QL (Wang, Hunt & Zhou, ICLR 2023), as the official code runs it (ALGORITHMS.md §1).

The policy is a conditional DDPM over actions (N = 5, vp schedule, ε-prediction;
`diffrl.diffusion.policy`). The actor loss
is the diffusion behaviour-cloning loss plus η times a normalised Q term, back-propagated through
the whole reverse chain. Twin critics learn from next actions sampled by an EMA copy of the actor.

Per step (§1.5): critic update → actor update → EMA (every 5 steps from step 1000) → Polyak critic
target → step + 1.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets, optim
from diffrl.agents import common
from diffrl.agents.api import ActionChoice, Agent, Batch, Spec
from diffrl.diffusion import policy as ddpm_policy
from diffrl.diffusion.policy import DDPMPolicy
from diffrl.optim import LRSchedule, diffusion_ql_schedule
from diffrl.settings import (
    Discount,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Rate,
    settings,
)


@settings
class Config:
    """Diffusion-QL hyperparameters; defaults are the paper's Gym-MuJoCo settings."""

    n_steps: PositiveInt = 5  # diffusion steps N
    beta_schedule: Literal["vp", "linear", "cosine"] = "vp"  # noise schedule
    clip_denoised: bool = True  # clip x̂₀ to the action box inside the sampler
    hidden: PositiveInt = 256  # width of denoiser and critic layers
    actor_lr: PositiveFloat = 3e-4  # per-task actor learning rate
    critic_lr: PositiveFloat = 3e-4  # the official code uses 3e-4 for the critic on every task
    eta: NonNegativeFloat = 1.0  # weight of the normalised Q term
    gamma: Discount = 0.99  # discount
    tau: Rate = 0.005  # Polyak rate of the critic target
    grad_norm: float = 9.0  # global grad-norm clip for actor and critic (gn); ≤ 0 disables
    max_q_backup: bool = False  # Bellman target: max over 10 EMA samples per head, then min
    backup_samples: PositiveInt = 10  # next actions per state for the max-Q backup
    ema_decay: Probability = 0.995  # EMA of the actor that produces target actions
    ema_every: PositiveInt = 5  # EMA update period in steps
    ema_start: NonNegativeInt = 1000  # first step of EMA updates
    lr_decay: bool = True  # cosine learning-rate decay (see `mode` for how it is stepped)
    total_steps: PositiveInt = 2_000_000  # length of training, for the lr schedule
    eval_every: PositiveInt = 50_000  # steps between evaluations (reference lr stepping)
    mode: Literal["reference", "clean"] = "reference"  # clean: EMA warm start, per-step cosine

    def lr_schedule(self, base: float) -> LRSchedule:
        return diffusion_ql_schedule(
            base, self.lr_decay, self.mode, self.total_steps, self.eval_every
        )


@struct.dataclass
class State:
    actor: Any
    actor_opt: Any
    ema_actor: Any
    critic: Any
    critic_opt: Any
    critic_target: Any
    step: jax.Array


def _tx(config: Config):
    return optim.adam(config.grad_norm)


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_actor, k_critic = jax.random.split(key)
    actor = nets.denoiser_init(k_actor, spec.obs_dim, spec.action_dim, config.hidden)
    critic = nets.critic_init(k_critic, spec.obs_dim, spec.action_dim, config.hidden)
    tx = _tx(config)
    return State(
        actor=actor,
        actor_opt=tx.init(actor),
        ema_actor=jax.tree.map(jnp.copy, actor),  # own buffers: the train step donates state
        critic=critic,
        critic_opt=tx.init(critic),
        critic_target=jax.tree.map(jnp.copy, critic),
        step=jnp.zeros((), jnp.int32),
    )


# -- losses -----------------------------------------------------------------------------------
def critic_targets(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> jax.Array:
    n = config.backup_samples if config.max_q_backup else 1
    next_obs = jnp.repeat(batch.next_observations, n, axis=0)
    next_a = ddpm_policy.sample_actions(
        DDPMPolicy.of(config), state.ema_actor, next_obs, key, spec.action_dim, spec.max_action
    )
    target_q = nets.critic_apply(state.critic_target, next_obs, next_a)
    return common.bellman_target(batch.rewards, batch.not_done, target_q, config.gamma, n)


def critic_loss(critic: Any, batch: Batch, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    q = nets.critic_apply(critic, batch.observations, batch.actions)
    loss = ((q - y[None]) ** 2).mean(axis=1).sum()
    return loss, q


def actor_terms(
    config: Config, spec: Spec, actor: Any, critic: Any, batch: Batch, key: jax.Array
) -> dict:
    """L_bc and the random-head normalised Q term L_q on the online critic (§1.4)."""
    k_bc, k_pi, k_head = jax.random.split(key, 3)
    policy = DDPMPolicy.of(config)
    l_bc = ddpm_policy.bc_loss(policy, actor, batch.observations, batch.actions, k_bc)
    a_pi = ddpm_policy.sample_actions(
        policy, actor, batch.observations, k_pi, spec.action_dim, spec.max_action
    )
    q_pi = nets.critic_apply(critic, batch.observations, a_pi)
    l_q = common.normalized_q_loss(q_pi, k_head)
    return {"actor/bc_loss": l_bc, "actor/q_loss": l_q, "actor/q_policy": q_pi.min(0).mean()}


# -- one gradient step ------------------------------------------------------------------------
def update_critic(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    y = critic_targets(config, spec, state, batch, key)
    (loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(state.critic, batch, y)
    lr = config.lr_schedule(config.critic_lr)(state.step)
    critic, opt, gnorm = optim.optimizer_step(
        _tx(config), grads, state.critic_opt, state.critic, lr
    )
    metrics = {
        "critic/loss": loss,
        "critic/q_data": q.mean(),
        "critic/target_q": y.mean(),
        "critic/grad_norm": gnorm,
    }
    return state.replace(critic=critic, critic_opt=opt), metrics


def update_actor(
    config: Config,
    spec: Spec,
    state: State,
    batch: Batch,
    key: jax.Array,
    weight_bc: float | jax.Array,
    eta: float | jax.Array,
) -> tuple[State, dict]:
    """One actor step on weight_bc·L_bc + eta·L_q (DQL: 1 and η; DiffCPS: λ and 1)."""

    def loss_fn(actor: Any) -> tuple[jax.Array, dict]:
        terms = actor_terms(config, spec, actor, state.critic, batch, key)
        return weight_bc * terms["actor/bc_loss"] + eta * terms["actor/q_loss"], terms

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.actor)
    lr = config.lr_schedule(config.actor_lr)(state.step)
    actor, opt, gnorm = optim.optimizer_step(_tx(config), grads, state.actor_opt, state.actor, lr)
    metrics = {"actor/loss": loss, "actor/grad_norm": gnorm, "actor/lr": lr, **aux}
    return state.replace(actor=actor, actor_opt=opt), metrics


def finish_step(config: Config, state: State) -> State:
    """EMA of the actor, Polyak of the critic target, step + 1."""
    ema = optim.ema_step(
        state.ema_actor,
        state.actor,
        state.step,
        config.ema_decay,
        config.ema_every,
        config.ema_start,
        warm_start=config.mode == "clean",
    )
    target = optim.polyak(state.critic_target, state.critic, config.tau)
    return state.replace(ema_actor=ema, critic_target=target, step=state.step + 1)


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    k_critic, k_actor = jax.random.split(key)
    state, m_critic = update_critic(config, spec, state, batch, k_critic)
    state, m_actor = update_actor(config, spec, state, batch, k_actor, 1.0, config.eta)
    return finish_step(config, state), {**m_critic, **m_actor}


# -- acting -----------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """One reverse-chain sample per state from the online actor."""
    return ddpm_policy.sample_actions(
        DDPMPolicy.of(config), state.actor, obs, key, spec.action_dim, spec.max_action
    )


def q_value(config: Config, state: State, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """The target critic's min-Q, by which the official evaluation ranks candidates."""
    return nets.critic_apply(state.critic_target, obs, actions).min(axis=0)


def policy_state(state: State, ranked: bool) -> State:
    """The state without what acting never reads (optimiser states, EMA, online critic; the
    target critic too when no candidates are ranked)."""
    return state.replace(
        actor_opt=None,
        ema_actor=None,
        critic=None,
        critic_opt=None,
        critic_target=state.critic_target if ranked else None,
    )


# the official evaluation: 50 candidates, one drawn from softmax of the target critic's Q
AGENT = Agent(
    name="dql",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    q_value=q_value,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # offline model selection ranks by L_bc (§1.8)
    default_choice=ActionChoice(selection="softmax", candidates=50),
)
