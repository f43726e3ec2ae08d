"""DTQL's networks (ALGORITHMS.md §2.1), used by no other algorithm: the score network F_φ of
the EDM behaviour model, the one-step tanh-Gaussian policy and the IQL-style critic (twin Q heads
with LayerNorm, and a V net). Built from the shared layers of `diffrl.nets`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffrl.nets import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    TIME_DIM,
    Params,
    dense,
    layer_norm,
    mish,
    mlp,
    mlp_init,
    time_embedding,
    time_mlp_init,
)


def score_net_init(
    key: jax.Array, obs_dim: int, action_dim: int, hidden: int = 256, hidden_layers: int = 4
) -> Params:
    """DTQL's ScoreNetwork F_φ: input [c_in·x (A), state (S), time embedding (16)] →
    `hidden_layers` Linear(hidden) layers → Linear(hidden→A)."""
    k_time, k_trunk = jax.random.split(key)
    sizes = [action_dim + obs_dim + TIME_DIM] + [hidden] * hidden_layers + [action_dim]
    return {"time": time_mlp_init(k_time), "trunk": mlp_init(k_trunk, sizes)}


def score_net_apply(
    p: Params, x: jax.Array, obs: jax.Array, c_noise: jax.Array, linear_first: bool = True
) -> jax.Array:
    """F_φ(x, s, c_noise); c_noise (= ¼ ln σ) broadcasts to the batch (shape (B, 1) or (B,)).

    `linear_first=True` reproduces the official trunk, which has no activation after its first
    Linear, so the first two layers compose into one linear map; False puts a Mish there.
    """
    c_noise = jnp.broadcast_to(jnp.reshape(c_noise, (-1,)), x.shape[:-1])
    h = jnp.concatenate([x, obs, time_embedding(p["time"], c_noise)], axis=-1)
    trunk = p["trunk"]
    n = len(trunk)
    for i in range(n):
        h = dense(trunk[f"l{i}"], h)
        if i < n - 1 and not (i == 0 and linear_first):
            h = mish(h)
    return h


def gaussian_policy_init(
    key: jax.Array, obs_dim: int, action_dim: int, hidden: int = 256
) -> Params:
    """S → 3×hidden ReLU → 2A (mean, log-std); orthogonal weights (gain 1), zero biases."""
    sizes = [obs_dim, hidden, hidden, hidden, 2 * action_dim]
    keys = jax.random.split(key, len(sizes) - 1)
    ortho = jax.nn.initializers.orthogonal(1.0)
    return {
        f"l{i}": {
            "w": ortho(k, (sizes[i], sizes[i + 1]), jnp.float32),
            "b": jnp.zeros((sizes[i + 1],), jnp.float32),
        }
        for i, k in enumerate(keys)
    }


def gaussian_policy_apply(p: Params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, log-std) of the pre-tanh Gaussian; log-std hard-clamped to [−5, 2]."""
    out = mlp(p, obs, act=jax.nn.relu)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def iql_critic_init(key: jax.Array, obs_dim: int, action_dim: int, hidden: int = 256) -> Params:
    """DTQL's critic: twin Q heads with LayerNorm (stacked on a leading axis of 2) and a V net."""
    k_q, k_v = jax.random.split(key)
    q = mlp_init(k_q, [obs_dim + action_dim, hidden, hidden, hidden, 1], stack=(2,))
    ones, zeros = jnp.ones((2, hidden)), jnp.zeros((2, hidden))
    ln = {f"l{i}": {"scale": ones + 0.0, "bias": zeros + 0.0} for i in range(3)}  # own buffers
    return {"q": q, "q_ln": ln, "v": mlp_init(k_v, [obs_dim, hidden, hidden, hidden, 1])}


def iql_q_apply(p: Params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """(Q1, Q2), shape (2, B): Linear → LayerNorm → Mish per hidden layer, input [state, action]."""
    h = jnp.concatenate([obs, action], axis=-1)
    q, ln = p["q"], p["q_ln"]
    n = len(q)
    for i in range(n):
        spec = "bi,kio->kbo" if i == 0 else "kbi,kio->kbo"
        h = jnp.einsum(spec, h, q[f"l{i}"]["w"]) + q[f"l{i}"]["b"][:, None, :]
        if i < n - 1:
            norm = ln[f"l{i}"]
            h = mish(layer_norm(h, norm["scale"][:, None, :], norm["bias"][:, None, :]))
    return h[..., 0]


def iql_v_apply(p: Params, obs: jax.Array) -> jax.Array:
    """V(s), shape (B,): 3×hidden Mish MLP without LayerNorm."""
    return mlp(p["v"], obs)[..., 0]
