"""A plain jitted Diffusion-QL step, the baseline `speed.py --baseline` measures beside the library.

Same arithmetic as `diffrl.agents.dql` (ALGORITHMS.md §1), written the obvious way: the denoiser's
first layer takes the concatenated [x, t_emb, s] at every chain step, each critic head is its own
MLP, one jitted call per step, and the batch is sampled on the host and copied in per step, as
the official code does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffrl import nets
from diffrl.diffusion import ddpm


def mlp_params(key, sizes):
    return nets.mlp_init(key, sizes)


def denoiser(p, x, t, s):
    temb = nets.time_embedding(p["time"], jnp.broadcast_to(t, (x.shape[0],)))
    return nets.mlp(p["trunk"], jnp.concatenate([x, temb, s], -1))


def chain(p, s, key, a_dim, sched):
    return ddpm.sample(sched, lambda x, t, c: denoiser(p, x, t, c), s, key, a_dim)


def q_heads(ps, s, a):
    x = jnp.concatenate([s, a], -1)
    return jnp.stack([nets.mlp(p, x)[:, 0] for p in ps])


def make_step(obs_dim: int, a_dim: int, eta: float = 1.0, gn: float = 9.0):
    sched = ddpm.make_schedule("vp", 5)
    tx = optax.chain(optax.clip_by_global_norm(gn), optax.adam(3e-4))

    def init(key):
        ka, k1, k2 = jax.random.split(key, 3)
        actor = nets.denoiser_init(ka, obs_dim, a_dim)
        critic = [mlp_params(k, [obs_dim + a_dim, 256, 256, 256, 1]) for k in (k1, k2)]
        return dict(
            actor=actor,
            ema=actor,
            critic=critic,
            target=critic,
            aopt=tx.init(actor),
            copt=tx.init(critic),
        )

    def step(st, batch, key):
        s, a, r, s2, nd = batch
        k1, k2, k3, k4 = jax.random.split(key, 4)
        a2 = chain(st["ema"], s2, k1, a_dim, sched)
        y = jax.lax.stop_gradient(r + 0.99 * nd * q_heads(st["target"], s2, a2).min(0))

        def closs(c):
            return ((q_heads(c, s, a) - y) ** 2).mean(1).sum()

        g = jax.grad(closs)(st["critic"])
        u, copt = tx.update(g, st["copt"], st["critic"])
        critic = optax.apply_updates(st["critic"], u)

        def aloss(p):
            bc = ddpm.eps_loss(sched, lambda x, t, c: denoiser(p, x, t, c), a, s, k2)
            q = q_heads(critic, s, chain(p, s, k3, a_dim, sched))
            first = jax.random.uniform(k4) > 0.5
            qi, qj = jnp.where(first, q[0], q[1]), jnp.where(first, q[1], q[0])
            return bc - eta * qi.mean() / jax.lax.stop_gradient(jnp.abs(qj).mean())

        g = jax.grad(aloss)(st["actor"])
        u, aopt = tx.update(g, st["aopt"], st["actor"])
        actor = optax.apply_updates(st["actor"], u)
        target = jax.tree.map(lambda t, o: 0.995 * t + 0.005 * o, st["target"], critic)
        return dict(actor=actor, ema=st["ema"], critic=critic, target=target, aopt=aopt, copt=copt)

    return init, jax.jit(step)


def host_batches(data, batch: int, seed: int = 0):
    """Uniform with-replacement batches drawn and copied from host memory, one per step."""
    rng = np.random.default_rng(seed)
    n = len(data[0])
    while True:
        idx = rng.integers(0, n, batch)
        yield tuple(jnp.asarray(x[idx]) for x in data)
