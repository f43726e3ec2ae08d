"""CVAE behaviour cloning: the generative model of BCQ (Fujimoto, Meger & Precup, ICML 2019),
trained and used on its own (docs/baselines.md).

Encoder E(s, a) → (μ, log σ) of a latent z of size 2·|A| (750-750 ReLU, log σ clamped to
[−4, 15]); decoder D(s, z) = a_max·tanh(·) (750-750 ReLU). Loss: MSE(D(s, μ + σξ), a) + ½·KL(N(μ,
σ²) ‖ N(0, 1)), both means over batch and dimensions, as BCQ's code. Acting decodes a latent
z ~ N(0, 1) clipped to [−0.5, 0.5], as BCQ samples its candidate actions.

Per step: one Adam step (lr 1e-3, PyTorch's default that BCQ uses) on the loss → step + 1.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import nets, optim
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.settings import NonNegativeFloat, PositiveFloat, PositiveInt, settings

LOG_STD_MIN, LOG_STD_MAX = -4.0, 15.0  # BCQ's clamp of the encoder's log σ


@settings
class Config:
    """BCQ's VAE hyperparameters."""

    hidden: PositiveInt = 750  # width of the encoder's and decoder's two hidden layers
    latent_factor: PositiveInt = 2  # latent size = latent_factor × action_dim
    lr: PositiveFloat = 1e-3  # Adam learning rate (torch.optim.Adam's default, as BCQ)
    kl_weight: NonNegativeFloat = 0.5  # weight of the KL term
    latent_clip: PositiveFloat = 0.5  # act: decoded latents are N(0, 1) clipped to ±latent_clip

    def latent_dim(self, spec: Spec) -> int:
        return self.latent_factor * spec.action_dim


@struct.dataclass
class State:
    encoder: Any  # (s, a) → (μ, log σ) of z
    decoder: Any  # (s, z) → a
    vae_opt: Any  # one Adam state over {"encoder", "decoder"}
    step: jax.Array


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_enc, k_dec = jax.random.split(key)
    s, a, z, h = spec.obs_dim, spec.action_dim, config.latent_dim(spec), config.hidden
    encoder = nets.mlp_init(k_enc, [s + a, h, h, 2 * z])
    decoder = nets.mlp_init(k_dec, [s + z, h, h, a])
    return State(
        encoder=encoder,
        decoder=decoder,
        vae_opt=optim.adam(0.0).init({"encoder": encoder, "decoder": decoder}),
        step=jnp.zeros((), jnp.int32),
    )


# -- the networks -------------------------------------------------------------------------------
def encode(encoder: Any, obs: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(μ, log σ) of the posterior over z, log σ clamped to [−4, 15]."""
    out = nets.mlp(encoder, jnp.concatenate([obs, actions], axis=-1), act=jax.nn.relu)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def decode(spec: Spec, decoder: Any, obs: jax.Array, z: jax.Array) -> jax.Array:
    """a = a_max·tanh(D(s, z))."""
    out = nets.mlp(decoder, jnp.concatenate([obs, z], axis=-1), act=jax.nn.relu)
    return spec.max_action * jnp.tanh(out)


def prior_latent(config: Config, spec: Spec, key: jax.Array, n: int) -> jax.Array:
    """n latents z ~ N(0, 1), clipped to [−latent_clip, latent_clip]."""
    z = jax.random.normal(key, (n, config.latent_dim(spec)))
    return jnp.clip(z, -config.latent_clip, config.latent_clip)


# -- the loss -----------------------------------------------------------------------------------
def kl_to_standard_normal(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """KL(N(μ, σ²) ‖ N(0, 1)) per latent dimension, averaged over batch and dimensions:
    −½·mean(1 + log σ² − μ² − σ²)."""
    return -0.5 * jnp.mean(1.0 + 2.0 * log_std - mean**2 - jnp.exp(2.0 * log_std))


def vae_loss(
    config: Config, spec: Spec, vae: dict, batch: Batch, key: jax.Array
) -> tuple[jax.Array, dict]:
    """MSE reconstruction of the dataset action from a posterior sample, plus kl_weight·KL."""
    mean, log_std = encode(vae["encoder"], batch.observations, batch.actions)
    z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    recon = decode(spec, vae["decoder"], batch.observations, z)
    recon_loss = jnp.mean((recon - batch.actions) ** 2)
    kl = kl_to_standard_normal(mean, log_std)
    loss = recon_loss + config.kl_weight * kl
    return loss, {"actor/bc_loss": loss, "actor/recon_loss": recon_loss, "actor/kl_loss": kl}


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    vae = {"encoder": state.encoder, "decoder": state.decoder}
    vae, opt, aux = optim.gradient_step(
        lambda p: vae_loss(config, spec, p, batch, key),
        vae,
        state.vae_opt,
        optim.adam(0.0),
        jnp.float32(config.lr),
    )
    metrics = {k: aux[k] for k in ("actor/bc_loss", "actor/recon_loss", "actor/kl_loss")} | {
        "actor/grad_norm": aux["gn"]
    }
    state = state.replace(encoder=vae["encoder"], decoder=vae["decoder"], vae_opt=opt)
    return state.replace(step=state.step + 1), metrics


# -- acting -------------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    """Decoded actions D(s, z) with z ~ N(0, 1) clipped to ±latent_clip."""
    z = prior_latent(config, spec, key, obs.shape[0])
    return decode(spec, state.decoder, obs, z)


def policy_state(state: State, ranked: bool) -> State:
    """The state without the encoder and the optimiser state (no candidates are ranked)."""
    return state.replace(encoder=None, vae_opt=None)


AGENT = Agent(
    name="cvaebc",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    policy_state=policy_state,
    selection_metric="actor/bc_loss",  # the VAE loss (reconstruction + ½·KL)
)
