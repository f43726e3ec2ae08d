"""Flow Q-Learning (FQL; Park, Li & Levine, ICML 2025), as its official code runs it.

Three networks: a BC flow v_θ(s, x_t, t) trained by flow matching on the dataset's actions, a
one-step policy μ_ω(s, z) that maps noise to an action in one pass, and a twin critic Q_φ.

- Critic: y = r + γ·mask·agg_i Q̄_i(s', clip(μ_ω(s', z'))), agg = mean (default) or min;
  L_Q = mean over members and batch of (Q_i(s, a) − y)². Target: Polyak τ every step.
- BC flow: x_0 ~ N(0, I), x_1 = a, t ~ U[0, 1], x_t = (1 − t)x_0 + t·x_1;
  L_BC = mean (v_θ(s, x_t, t) − (x_1 − x_0))².
- Distillation: a* = clip(Euler integration of v_θ from z in `flow_steps` steps), no gradient;
  L_D = mean (μ_ω(s, z) − a*)².
- Q term: −mean over the batch of the mean of both critics at (s, clip(μ_ω(s, z))), the same z;
  the critic is frozen there (only μ_ω gets its gradient). `normalize_q_loss` divides it by
  sg(mean |Q|).
- One Adam (lr 3e-4) over all networks on L_Q + L_BC + α·L_D + Q term. Because no gradient is
  clipped and each loss reaches only its own networks, this is one Adam step per network.
- Target critic: Polyak τ every step. The official code moves it toward the critic as it was
  *before* this step's gradient step (its target update reads the old parameters); `reference`
  mode does the same, `clean` mode moves it toward the updated critic.
- Acting: clip(μ_ω(s, z)) with fresh z ~ N(0, I) (the official evaluation samples; it has no
  mean action).

Networks (the official `MLP`): per hidden layer Dense (variance scaling 1, fan_avg, uniform;
zero bias) → GELU (tanh approximation, flax's default) → LayerNorm (the critic's only, ε 1e-6);
4 × 512 hidden units; the time t enters the flow as a raw scalar. The random draws follow the
official key splits step for step.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from diffrl import optim
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.nets import dense, layer_norm
from diffrl.settings import Discount, NonNegativeFloat, PositiveFloat, PositiveInt, Rate, settings

Params = Any
LN_EPS = 1e-6  # flax.linen.LayerNorm's default epsilon


@settings
class Config:
    """FQL hyperparameters; defaults are the official `get_config()` (α is tuned per task)."""

    hidden: PositiveInt = 512  # width of every hidden layer, all three networks
    layers: PositiveInt = 4  # hidden layers per network
    lr: PositiveFloat = 3e-4  # Adam learning rate, one optimiser over all networks
    gamma: Discount = 0.99  # discount
    tau: Rate = 0.005  # Polyak rate of the target critic (every step)
    q_agg: Literal["mean", "min"] = "mean"  # how the target critics' values are combined
    alpha: NonNegativeFloat = 10.0  # weight of the distillation loss
    flow_steps: PositiveInt = 10  # Euler steps of the BC flow
    normalize_q_loss: bool = False  # divide the Q term by sg(mean |Q|)
    critic_layer_norm: bool = True  # LayerNorm after each hidden activation of the critic
    actor_layer_norm: bool = False  # the same for the flow and the one-step policy
    mode: Literal["reference", "clean"] = "reference"  # clean: Polyak toward the updated critic


@struct.dataclass
class State:
    nets: Any  # {"critic": stacked twin MLP, "flow": v_θ, "onestep": μ_ω}
    opt: Any  # one Adam state over `nets`
    target_critic: Any
    step: jax.Array


_TX = optim.adam(0.0)  # Adam's direction (no clipping); the lr is applied in optimizer_step


# -- networks ---------------------------------------------------------------------------------
def _dense_init(key: jax.Array, fan_in: int, fan_out: int, stack: tuple[int, ...]) -> Params:
    """variance_scaling(1, fan_avg, uniform): U(±√(3 / ((fan_in + fan_out) / 2))), zero bias."""
    limit = jnp.sqrt(3.0 / ((fan_in + fan_out) / 2.0))
    w = jax.random.uniform(key, (*stack, fan_in, fan_out), jnp.float32, -limit, limit)
    return {"w": w, "b": jnp.zeros((*stack, fan_out), jnp.float32)}


def mlp_init(key: jax.Array, sizes: list[int], layer_norm: bool, stack: tuple = ()) -> Params:
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, k in enumerate(keys):
        layer = _dense_init(k, sizes[i], sizes[i + 1], stack)
        if layer_norm and i < len(keys) - 1:  # a LayerNorm follows each hidden activation
            layer["ln_scale"] = jnp.ones((*stack, sizes[i + 1]), jnp.float32)
            layer["ln_bias"] = jnp.zeros((*stack, sizes[i + 1]), jnp.float32)
        layers.append(layer)
    return layers


def mlp_apply(layers: Params, x: jax.Array) -> jax.Array:
    """Dense → GELU → [LayerNorm] per hidden layer, a linear output."""
    for layer in layers[:-1]:
        x = jax.nn.gelu(dense(layer, x), approximate=True)
        if "ln_scale" in layer:
            x = layer_norm(x, layer["ln_scale"], layer["ln_bias"], LN_EPS)
    return dense(layers[-1], x)


def critic_apply(critic: Params, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """(Q₁, Q₂), shape (2, B): the twin MLPs on [s, a]."""
    inputs = jnp.concatenate([obs, actions], axis=-1)
    return jax.vmap(lambda p: mlp_apply(p, inputs)[..., 0])(critic)


def flow_velocity(flow: Params, obs: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
    return mlp_apply(flow, jnp.concatenate([obs, x, t], axis=-1))


def onestep_action(onestep: Params, obs: jax.Array, noise: jax.Array) -> jax.Array:
    return mlp_apply(onestep, jnp.concatenate([obs, noise], axis=-1))


def init(config: Config, spec: Spec, key: jax.Array) -> State:
    k_critic, k_flow, k_onestep = jax.random.split(key, 3)
    hidden = [config.hidden] * config.layers
    s, a = spec.obs_dim, spec.action_dim
    nets = {
        "critic": mlp_init(k_critic, [s + a, *hidden, 1], config.critic_layer_norm, (2,)),
        "flow": mlp_init(k_flow, [s + a + 1, *hidden, a], config.actor_layer_norm),
        "onestep": mlp_init(k_onestep, [s + a, *hidden, a], config.actor_layer_norm),
    }
    return State(
        nets=nets,
        opt=_TX.init(nets),
        target_critic=jax.tree.map(jnp.copy, nets["critic"]),  # own buffers: state is donated
        step=jnp.zeros((), jnp.int32),
    )


# -- actions ----------------------------------------------------------------------------------
def policy_actions(spec: Spec, onestep: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
    """clip(μ_ω(s, z)), z ~ N(0, I) from the first half of `key` (the official sample_actions)."""
    noise_key, _ = jax.random.split(key)
    noise = jax.random.normal(noise_key, (*obs.shape[:-1], spec.action_dim))
    return jnp.clip(onestep_action(onestep, obs, noise), -spec.max_action, spec.max_action)


def flow_actions(
    config: Config, spec: Spec, flow: Params, obs: jax.Array, noise: jax.Array
) -> jax.Array:
    """clip(x_1) by Euler integration of v_θ from x_0 = noise, t_k = k / flow_steps."""

    def euler(k: int, x: jax.Array) -> jax.Array:
        t = jnp.full((*obs.shape[:-1], 1), k / config.flow_steps, jnp.float32)
        return x + flow_velocity(flow, obs, x, t) / config.flow_steps

    x = jax.lax.fori_loop(0, config.flow_steps, euler, noise)
    return jnp.clip(x, -spec.max_action, spec.max_action)


# -- losses -----------------------------------------------------------------------------------
def critic_loss(
    config: Config, spec: Spec, state: State, critic: Params, batch: Batch, key: jax.Array
) -> tuple[jax.Array, dict]:
    _, sample_key = jax.random.split(key)
    next_a = policy_actions(spec, state.nets["onestep"], batch.next_observations, sample_key)
    next_qs = critic_apply(state.target_critic, batch.next_observations, next_a)
    next_q = next_qs.min(axis=0) if config.q_agg == "min" else next_qs.mean(axis=0)
    y = jax.lax.stop_gradient(batch.rewards + config.gamma * batch.not_done * next_q)
    q = critic_apply(critic, batch.observations, batch.actions)
    loss = jnp.square(q - y[None]).mean()
    return loss, {"critic/loss": loss, "critic/q_data": q.mean(), "critic/target_q": y.mean()}


def actor_loss(
    config: Config, spec: Spec, state: State, nets: Params, batch: Batch, key: jax.Array
) -> tuple[jax.Array, dict]:
    """L_BC + α·L_D + Q term, with gradients into the flow and the one-step policy only."""
    (b, a), obs = batch.actions.shape, batch.observations
    key, x_key, t_key = jax.random.split(key, 3)
    x0 = jax.random.normal(x_key, (b, a))
    t = jax.random.uniform(t_key, (b, 1))
    x_t = (1 - t) * x0 + t * batch.actions
    bc = jnp.mean((flow_velocity(nets["flow"], obs, x_t, t) - (batch.actions - x0)) ** 2)
    key, z_key = jax.random.split(key)
    z = jax.random.normal(z_key, (b, a))
    target = jax.lax.stop_gradient(flow_actions(config, spec, state.nets["flow"], obs, z))
    mu = onestep_action(nets["onestep"], obs, z)
    distill = jnp.mean((mu - target) ** 2)
    frozen = jax.lax.stop_gradient(state.nets["critic"])
    q = critic_apply(frozen, obs, jnp.clip(mu, -spec.max_action, spec.max_action)).mean(axis=0)
    q_loss = -q.mean()
    if config.normalize_q_loss:
        q_loss = q_loss / jax.lax.stop_gradient(jnp.abs(q).mean())
    mse = jnp.mean((policy_actions(spec, state.nets["onestep"], obs, key) - batch.actions) ** 2)
    loss = bc + config.alpha * distill + q_loss
    metrics = {"actor/loss": loss, "actor/bc_flow_loss": bc, "actor/distill_loss": distill,
               "actor/q_loss": q_loss, "actor/q_policy": q.mean(), "actor/mse": mse}  # fmt: skip
    return loss, metrics


# -- one gradient step ------------------------------------------------------------------------
def update(
    config: Config, spec: Spec, state: State, batch: Batch, key: jax.Array
) -> tuple[State, dict]:
    """One Adam step on critic + actor losses, then the target critic's Polyak step."""
    _, actor_key, critic_key = jax.random.split(key, 3)

    def total(nets: Params) -> tuple[jax.Array, dict]:
        c_loss, c_metrics = critic_loss(config, spec, state, nets["critic"], batch, critic_key)
        a_loss, a_metrics = actor_loss(config, spec, state, nets, batch, actor_key)
        return c_loss + a_loss, {**c_metrics, **a_metrics}

    (_, metrics), grads = jax.value_and_grad(total, has_aux=True)(state.nets)
    nets, opt, grad_norm = optim.optimizer_step(_TX, grads, state.opt, state.nets, config.lr)
    toward = state.nets["critic"] if config.mode == "reference" else nets["critic"]
    state = state.replace(
        nets=nets,
        opt=opt,
        target_critic=optim.polyak(state.target_critic, toward, config.tau),
        step=state.step + 1,
    )
    return state, {**metrics, "train/grad_norm": grad_norm}


# -- acting -----------------------------------------------------------------------------------
def sample(config: Config, spec: Spec, state: State, obs: jax.Array, key: jax.Array) -> jax.Array:
    return policy_actions(spec, state.nets["onestep"], obs, key)


def q_value(config: Config, state: State, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """min over the target critics, for ranking candidate actions."""
    return critic_apply(state.target_critic, obs, actions).min(axis=0)


def policy_state(state: State, ranked: bool) -> State:
    """The one-step policy (and the target critic when candidates are ranked)."""
    nets = {"onestep": state.nets["onestep"]}
    return state.replace(nets=nets, opt=None, target_critic=state.target_critic if ranked else None)


AGENT = Agent(
    name="fql",
    Config=Config,
    State=State,
    init=init,
    update=update,
    sample=sample,
    policy_state=policy_state,
    selection_metric="actor/bc_flow_loss",  # the BC flow's flow-matching loss
    q_value=q_value,
)
