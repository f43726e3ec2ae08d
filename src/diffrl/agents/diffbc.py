"""Diffusion behaviour cloning: Diffusion-QL with the Q term switched off (docs/baselines.md).

The policy, its ε-prediction loss, the schedules, the learning-rate rule and the reverse-chain
sampler are Diffusion-QL's own functions (`diffrl.agents.dql`), called with the equivalent DQL
configuration (`as_dql`). Nothing else is trained: no critic, no target networks, no EMA copy
(DQL's EMA actor only produces the critic's target actions). With the same key the actor starts
from the same weights as a DQL run's.

Per step: one clipped-Adam step on L_bc → step + 1. Acting draws plain reverse-chain samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets
from diffrl.agents import common, dql
from diffrl.agents.common import Batch, Spec


@dataclasses.dataclass(frozen=True)
class Config:
    """Diffusion-QL's actor settings (same defaults); there is no critic to configure."""

    n_steps: int = 5  # diffusion steps N
    beta_schedule: str = "vp"  # vp | linear | cosine
    clip_denoised: bool = True  # clip x̂₀ to the action box inside the sampler
    hidden: int = 256  # width of the denoiser's layers
    actor_lr: float = 3e-4  # Adam learning rate of the denoiser
    grad_norm: float = 9.0  # global grad-norm clip (DQL's default); ≤ 0 disables
    lr_decay: bool = True  # cosine learning-rate decay, stepped as DQL's `mode` says
    total_steps: int = 2_000_000  # length of training, for the lr schedule
    eval_every: int = 50_000  # steps between evaluations (reference lr stepping interval)
    mode: str = "reference"  # reference: DQL's once-per-evaluation cosine; clean: per step

    def __post_init__(self) -> None:
        as_dql(self)  # validates mode and schedule with DQL's own checks


def as_dql(config: Config) -> dql.Config:
    """The Diffusion-QL configuration with the same actor and η = 0."""
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return dql.Config(**shared, eta=0.0, selection="none")


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
        actor_opt=common.adam(config.grad_norm).init(actor),
        step=jnp.zeros((), jnp.int32),
    )


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    cfg = as_dql(config)

    def loss_fn(actor):
        loss = dql.bc_loss(cfg, actor, batch.observations, batch.actions, key)
        return loss, {}

    lr = cfg.lr_schedule(config.actor_lr)(state.step)
    actor, opt, aux = common.gradient_step(
        loss_fn, state.actor, state.actor_opt, common.adam(config.grad_norm), lr
    )
    metrics = {"bc_loss": aux["loss"], "actor_gn": aux["gn"], "actor_lr": lr}
    return state.replace(actor=actor, actor_opt=opt, step=state.step + 1), metrics


def act(
    config: Config,
    spec: Spec,
    state: State,
    obs: jax.Array,
    key: jax.Array,
    selection: str | None = None,
    candidates: int | None = None,
) -> jax.Array:
    """Plain reverse-chain samples of the N-step DDPM (DQL's sampler)."""
    common.require_plain_sampling("diffbc", selection, candidates)
    return dql.sample_actions(as_dql(config), spec, state.actor, obs, key)


def policy_state(state: State, selection: str = "none") -> State:
    """The state without the optimiser state. (`selection` is unused: this agent ranks no
    candidates.)"""
    return state.replace(actor_opt=None)


def selection_metric() -> str:
    """Offline selection ranks evaluations by the diffusion BC loss, as for DQL."""
    return "bc_loss"
