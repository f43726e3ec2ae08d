"""Diffusion behaviour cloning: Diffusion-QL with the Q term switched off (docs/baselines.md).

The policy, its ε-prediction loss and the reverse-chain sampler are Diffusion-QL's
(`diffrl.diffusion.policy`), and so is the learning-rate rule (`optim.diffusion_ql_schedule`).
Nothing else is trained: no critic, no target networks, no EMA copy (DQL's EMA actor only produces
the critic's target actions). With the same key the actor starts from the same weights as a DQL
run's.

Per step: one clipped-Adam step on L_bc → step + 1. Acting draws plain reverse-chain samples.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets, optim
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.diffusion import policy as ddpm_policy
from diffrl.diffusion.policy import DDPMPolicy
from diffrl.settings import PositiveFloat, PositiveInt, settings


@settings
class Config:
    """Diffusion-QL's actor settings (same defaults); there is no critic to configure."""

    n_steps: PositiveInt = 5  # diffusion steps N
    beta_schedule: Literal["vp", "linear", "cosine"] = "vp"  # noise schedule
    clip_denoised: bool = True  # clip x̂₀ to the action box inside the sampler
    hidden: PositiveInt = 256  # width of the denoiser's layers
    actor_lr: PositiveFloat = 3e-4  # Adam learning rate of the denoiser
    grad_norm: float = 9.0  # global grad-norm clip (DQL's default); ≤ 0 disables
    lr_decay: bool = True  # cosine learning-rate decay, stepped as DQL's `mode` says
    total_steps: PositiveInt = 2_000_000  # length of training, for the lr schedule
    eval_every: PositiveInt = 50_000  # steps between evaluations (reference lr stepping)
    mode: Literal["reference", "clean"] = "reference"  # DQL's cosine stepping (clean: per step)

    def lr_schedule(self, base: float) -> optim.LRSchedule:
        """Diffusion-QL's learning-rate rule (`dql.Config.lr_schedule`)."""
        return optim.diffusion_ql_schedule(
            base, self.lr_decay, self.mode, self.total_steps, self.eval_every
        )


@struct.dataclass
class State:
    actor: Any  # the denoiser ε_θ(x_t, t, s)
    actor_opt: Any
    step: jax.Array


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    """The denoiser DQL's `init` builds from the same key (DQL draws its critic from the other
    half of the split)."""
    k_actor, _ = jax.random.split(key)
    actor = nets.denoiser_init(k_actor, spec.obs_dim, spec.action_dim, config.hidden)
    return State(
        actor=actor,
        actor_opt=optim.adam(config.grad_norm).init(actor),
        step=jnp.zeros((), jnp.int32),
    )


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    policy = DDPMPolicy.of(config)

    def loss_fn(actor: Any) -> tuple[jax.Array, dict]:
        loss = ddpm_policy.bc_loss(policy, actor, batch.observations, batch.actions, key)
        return loss, {}

    lr = config.lr_schedule(config.actor_lr)(state.step)
    actor, opt, aux = optim.gradient_step(
        loss_fn, state.actor, state.actor_opt, optim.adam(config.grad_norm), lr
    )
    metrics = {"actor/bc_loss": aux["loss"], "actor/grad_norm": aux["gn"], "actor/lr": lr}
    return state.replace(actor=actor, actor_opt=opt, step=state.step + 1), metrics


def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """Plain reverse-chain samples of the N-step DDPM (DQL's sampler)."""
    return ddpm_policy.sample_actions(
        DDPMPolicy.of(config), state.actor, obs, key, spec.action_dim, spec.max_action
    )


def policy_state(state: State, ranked: bool) -> State:
    """The state without the optimiser state (no critic: no candidates are ranked)."""
    return state.replace(actor_opt=None)


AGENT = Agent(
    name="diffbc",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # the diffusion BC loss, as for DQL
)
