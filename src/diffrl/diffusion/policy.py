"""The conditional DDPM policy over actions: Diffusion-QL's actor, which DiffCPS and diffusion BC
share. The denoiser ε_θ(x_t, t, s) is `nets.denoiser_*`; this module holds its reverse-chain
sampler and its ε-prediction behaviour-cloning loss.

Both compute the state's and the N time embeddings' shares of the denoiser's first layer once
(per chain, per batch) instead of once per denoiser call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffrl import nets
from diffrl.diffusion import ddpm


class DDPMPolicy(NamedTuple):
    """The settings of the DDPM policy (fields of the agents' configs of the same names)."""

    n_steps: int  # diffusion steps N
    beta_schedule: str  # noise schedule: vp, linear or cosine
    clip_denoised: bool  # clip x̂₀ to the action box inside the sampler

    @classmethod
    def of(cls, config: Any) -> DDPMPolicy:
        """The policy settings of an agent's config (anything with the three fields)."""
        return cls(config.n_steps, config.beta_schedule, config.clip_denoised)


def sample_actions(
    policy: DDPMPolicy,
    actor: Any,
    obs: jax.Array,
    key: jax.Array,
    action_dim: int,
    max_action: float,
) -> jax.Array:
    """One action per state from the full reverse chain (differentiable in `actor`)."""
    sched = ddpm.make_schedule(policy.beta_schedule, policy.n_steps)
    state_feat = nets.denoiser_state_features(actor, obs, action_dim)
    time_feat = nets.denoiser_time_features(actor, jnp.arange(policy.n_steps), action_dim)

    def eps_fn(x: jax.Array, t: jax.Array, _: jax.Array) -> jax.Array:
        return nets.denoiser_trunk(actor, x, state_feat + time_feat[t[0]])

    return ddpm.sample(sched, eps_fn, obs, key, action_dim, max_action, policy.clip_denoised)


def bc_loss(
    policy: DDPMPolicy, actor: Any, obs: jax.Array, actions: jax.Array, key: jax.Array
) -> jax.Array:
    """The ε-prediction loss L_bc; the N time features are computed once and gathered."""
    sched = ddpm.make_schedule(policy.beta_schedule, policy.n_steps)
    a_dim = actions.shape[-1]
    state_feat = nets.denoiser_state_features(actor, obs, a_dim)
    time_feat = nets.denoiser_time_features(actor, jnp.arange(policy.n_steps), a_dim)

    def eps_fn(x: jax.Array, t: jax.Array, _: jax.Array) -> jax.Array:
        return nets.denoiser_trunk(actor, x, state_feat + time_feat[t])

    return ddpm.eps_loss(sched, eps_fn, actions, obs, key)
