"""DiffCPS (He et al., arXiv 2310.05333), as the official code runs it (ALGORITHMS.md §3).

Diffusion-QL with the η trade-off replaced by a constraint: maximise the normalised Q term subject
to L_bc ≤ κ, with a learned Lagrange multiplier λ. Networks, diffusion, critic, EMA, targets and
evaluation are Diffusion-QL's and come from `dql`; only the policy step differs.

Per step (§3.1, §4): critic update → [if step % policy_freq == 0: actor update on
clamp(λ, λ_min, λ_max)·L_bc + L_q, then one Adam step on λ·sg(κ − L_bc)] → EMA → Polyak → step + 1.
The stored λ is not projected; the clamp applies only where λ is used.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import optim
from diffrl.agents import dql
from diffrl.agents.api import Batch, Spec
from diffrl.settings import NonNegativeFloat, PositiveFloat, PositiveInt, settings


@settings
class Config(dql.Config):
    """DiffCPS hyperparameters: Diffusion-QL's plus the constraint's. `eta` is fixed at 1."""

    kappa: NonNegativeFloat = 0.06  # κ (`target_kl`): bound on L_bc; the official CLI default
    lambda_init: NonNegativeFloat = 1.0  # initial λ (`LA`)
    lambda_min: NonNegativeFloat = 0.0  # lower clamp of λ where it is used (0 Gym, 0.3 AntMaze)
    lambda_max: PositiveFloat = 100.0  # upper clamp of λ where it is used
    lambda_lr: PositiveFloat = 3e-5  # Adam learning rate of λ
    policy_freq: PositiveInt = 2  # actor and λ are updated when step % policy_freq == 0

    def __post_init__(self) -> None:
        if self.eta != 1.0:
            raise ValueError("DiffCPS has no eta (the Q term's weight is 1); set kappa instead")
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min {self.lambda_min} > lambda_max {self.lambda_max}")


@struct.dataclass
class State(dql.State):
    lam: jax.Array  # the raw multiplier λ (not projected)
    lam_opt: Any  # λ's optimiser state
    actor_updates: jax.Array  # policy (actor + λ) updates done so far


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    """Diffusion-QL's networks and optimisers (same key, same weights) plus λ."""
    base = dql.init(config, spec, key)
    lam = jnp.asarray(config.lambda_init, jnp.float32)
    return State(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
        lam=lam,
        lam_opt=optim.adam(config.grad_norm).init(lam),
        actor_updates=jnp.zeros((), jnp.int32),
    )


def lambda_used(config: Config, lam: jax.Array) -> jax.Array:
    """The weight of L_bc in the actor loss: clamp(λ, λ_min, λ_max), detached."""
    return jax.lax.stop_gradient(jnp.clip(lam, config.lambda_min, config.lambda_max))


def update_lambda(config: Config, state: State, bc_loss: jax.Array) -> tuple[State, dict]:
    """One Adam step on L_λ = λ·sg(κ − L_bc); its gradient is κ − L_bc, so λ rises while the
    constraint is violated. Clipped at grad_norm and scheduled like the other optimisers."""
    grad = jax.lax.stop_gradient(config.kappa - bc_loss)
    lr = config.lr_schedule(config.lambda_lr)(state.step)
    tx = optim.adam(config.grad_norm)
    lam, opt, _ = optim.optimizer_step(tx, grad, state.lam_opt, state.lam, lr)
    metrics = {
        "dual/lambda": lam,
        "dual/lr": lr,
        "dual/bc_minus_kappa": bc_loss - config.kappa,
        "dual/constraint_violated": (bc_loss > config.kappa).astype(jnp.float32),
    }
    return state.replace(lam=lam, lam_opt=opt), metrics


def policy_step(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    """Actor step on clamp(λ)·L_bc + 1·L_q (Diffusion-QL's `update_actor`), then the λ step on the
    same (pre-update) L_bc, as the official code does."""
    weight = lambda_used(config, state.lam)
    state, m_actor = dql.update_actor(config, spec, state, batch, key, weight, 1.0)
    state, m_lam = update_lambda(config, state, m_actor["actor/bc_loss"])
    state = state.replace(actor_updates=state.actor_updates + 1)
    return state, {
        **m_actor,
        **m_lam,
        "dual/lambda_used": weight,
        "train/policy_update": jnp.float32(1.0),
    }


def _skip_policy(config: Config, spec: Spec, state: State, batch: Batch, key):
    """No policy step: the state unchanged and NaN for every policy metric (the training loop's
    chunk means are nan-means, so these become means over policy steps)."""
    shapes = jax.eval_shape(lambda s: policy_step(config, spec, s, batch, key)[1], state)
    metrics = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)
    return state, {**metrics, "train/policy_update": jnp.float32(0.0)}


def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    k_critic, k_actor = jax.random.split(key)
    state, m_critic = dql.update_critic(config, spec, state, batch, k_critic)
    state, m_policy = jax.lax.cond(
        state.step % config.policy_freq == 0,
        lambda s: policy_step(config, spec, s, batch, k_actor),
        lambda s: _skip_policy(config, spec, s, batch, k_actor),
        state,
    )
    return dql.finish_step(config, state), {**m_critic, **m_policy}


def policy_state(state: State, ranked: bool) -> State:
    """DQL's pruning (dql.policy_state), and λ's optimiser."""
    return dql.policy_state(state, ranked).replace(lam_opt=None)


# acting is exactly Diffusion-QL's (online actor, target critic, candidate ranking)
AGENT = dataclasses.replace(
    dql.AGENT, name="diffcps", Config=Config, State=State, init=init, update=update,
    policy_state=policy_state,
)  # fmt: skip
