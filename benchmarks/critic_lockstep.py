"""DTQL's critic update in lockstep: diffrl's against the official code's, from the same initial
weights on the same batches, so that any difference in the update itself shows at once.

    python benchmarks/critic_lockstep.py --official PATH/Diffusion_Trusted_Q_Learning \\
        --dataset minari:diffrl/hopper-v5/medium-v0 --steps 30000 --pretrain-steps 5000 \\
        --lr-decay --seed 0

DTQL's critic (twin LayerNorm Q heads and a V net, expectile V loss on the online min-Q, TD loss
of the Q heads on the online V(s')) learns from the data alone: no actor enters its loss. So two
faithful implementations given the same initial weights and the same batches must compute the
same losses, up to float rounding, which then grows as in any chaotic training run. This script
builds the official `agents.model.Critic` (from a checkout the user gives, imported from there;
PyTorch installed by the user), copies its initial weights into diffrl's parameter tree, draws
each batch once and feeds it to both: the official `DTQL.q_v_critic_loss` with
`torch.optim.Adam` (and its `CosineAnnealingLR` over the main phase with `--lr-decay`), and
diffrl's `dtql.update_critic` (jitted). JSON lines: every `--print-every` steps the two losses
of the step and the largest weight difference; per window of `--window` steps the mean loss of
each side (what the parity table compares); a last line with the first step whose two losses
differ by more than 1e-3 relative.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl.agents import dtql
from diffrl.agents.api import Batch, Spec
from diffrl.data import load_dataset
from diffrl.run.loop import device_data

# the official Critic's nn.Sequential indices: Linear layers of a Q head, its LayerNorms, V's
Q_LINEAR, Q_NORM, V_LINEAR = (0, 3, 6, 9), (1, 4, 7), (0, 2, 4, 6)


def official_critic(path: Path, obs_dim: int, action_dim: int, seed: int) -> tuple[Any, Any]:
    """The official Critic (PyTorch-default init under `torch.manual_seed(seed)`) and the
    official DTQL's critic-loss function."""
    import torch

    sys.path.insert(0, str(path))
    from agents.dtql import DTQL
    from agents.model import Critic

    torch.manual_seed(seed)
    return Critic(obs_dim, action_dim, 256), DTQL.q_v_critic_loss


def as_diffrl_params(critic: Any) -> dict[str, Any]:
    """The official critic's weights in diffrl's tree: Q heads stacked on a leading axis of 2,
    Linear weights transposed to (in, out)."""

    def arr(t: Any) -> jax.Array:
        return jnp.asarray(t.detach().numpy())

    heads = (critic.q1_model, critic.q2_model)
    q = {
        f"l{i}": {"w": jnp.stack([arr(h[j].weight).T for h in heads]),
                  "b": jnp.stack([arr(h[j].bias) for h in heads])}
        for i, j in enumerate(Q_LINEAR)
    }  # fmt: skip
    norms = {
        f"l{i}": {"scale": jnp.stack([arr(h[j].weight) for h in heads]),
                  "bias": jnp.stack([arr(h[j].bias) for h in heads])}
        for i, j in enumerate(Q_NORM)
    }  # fmt: skip
    v = {
        f"l{i}": {"w": arr(critic.v_model[j].weight).T, "b": arr(critic.v_model[j].bias)}
        for i, j in enumerate(V_LINEAR)
    }
    return {"q": q, "q_ln": norms, "v": v}


def max_weight_gap(params: dict[str, Any], critic: Any) -> float:
    """The largest absolute difference between the two sides' current weights."""
    ours = jax.tree.leaves(params)
    theirs = jax.tree.leaves(as_diffrl_params(critic))
    return max(float(jnp.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))


def transitions(spec: str) -> dict[str, np.ndarray]:
    """The arrays the training loop samples from (`device_data`: not_done from the terminals),
    as NumPy for both sides."""
    data = device_data(load_dataset(spec))
    names = {"obs": "observations", "act": "actions", "rew": "rewards",
             "next": "next_observations", "not_done": "not_done"}  # fmt: skip
    return {short: np.asarray(getattr(data, name), np.float32) for short, name in names.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", type=Path, required=True, help="checkout of the official DTQL")
    p.add_argument("--dataset", required=True, help="a diffrl dataset spec")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--pretrain-steps", type=int, default=5_000, help="steps before the cosine")
    p.add_argument("--lr-decay", action="store_true", help="cosine to 0 over the main phase")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=5_000)
    p.add_argument("--print-every", type=int, default=2_500)
    args = p.parse_args()
    if not (args.official / "agents" / "model.py").is_file():
        raise SystemExit(f"{args.official}: expected the official DTQL checkout "
                         f"(agents/model.py), found no such file")  # fmt: skip
    for line in lockstep(args):
        print(json.dumps(line), flush=True)


def lockstep(args: argparse.Namespace):
    import torch
    from torch.optim.lr_scheduler import CosineAnnealingLR

    torch.set_num_threads(1)
    d = transitions(args.dataset)
    n, obs_dim, action_dim = len(d["obs"]), d["obs"].shape[1], d["act"].shape[1]
    critic, official_loss = official_critic(args.official, obs_dim, action_dim, args.seed)
    config = dtql.Config(lr_decay=args.lr_decay, pretrain_steps=args.pretrain_steps,
                         total_steps=args.steps)  # fmt: skip
    state = dtql.init(config, Spec(obs_dim, action_dim), jax.random.PRNGKey(args.seed))
    params = as_diffrl_params(critic)
    state = state.replace(critic=params, critic_opt=dtql._TX.init(params))
    update = jax.jit(lambda s, b: dtql.update_critic(config, s, b))
    opt = torch.optim.Adam(critic.parameters(), lr=config.critic_lr)
    sched = CosineAnnealingLR(opt, T_max=args.steps - args.pretrain_steps, eta_min=0.0)
    agent = _LossOwner(critic, config)  # what q_v_critic_loss reads from `self`
    rng = np.random.default_rng(args.seed)
    sums, first_parted = np.zeros(2), None
    for t in range(args.steps):
        i = rng.integers(0, n, 256)
        b = {k: v[i] for k, v in d.items()}
        theirs = official_loss(agent, *(torch.from_numpy(b[k]) for k in ("obs", "act", "next")),
                               torch.from_numpy(b["rew"][:, None]),
                               torch.from_numpy(b["not_done"][:, None]))  # fmt: skip
        opt.zero_grad()
        theirs.backward()
        opt.step()
        if args.lr_decay and t >= args.pretrain_steps:
            sched.step()  # the official main phase steps it after each train() call
        batch = Batch(b["obs"], b["act"], b["rew"], b["next"], b["not_done"])
        state, m = update(state.replace(step=jnp.int32(t)), batch)
        pair = np.array([float(theirs.detach()), float(m["critic/loss"])])
        sums += pair
        if first_parted is None and abs(pair[1] / pair[0] - 1) > 1e-3:
            first_parted = t
        if t % args.print_every == 0:
            yield {"kind": "step", "step": t, "loss_official": pair[0], "loss_diffrl": pair[1],
                   "max_weight_gap": max_weight_gap(state.critic, critic)}  # fmt: skip
        if (t + 1) % args.window == 0:
            official_mean, ours_mean = sums / args.window
            yield {"kind": "window", "step": t + 1, "official": official_mean,
                   "diffrl": ours_mean, "relative": ours_mean / official_mean - 1}  # fmt: skip
            sums = np.zeros(2)
    yield {"kind": "lockstep", "seed": args.seed, "steps": args.steps,
           "first_step_parted_1e-3": first_parted, "dataset": args.dataset}  # fmt: skip


class _LossOwner:
    """The attributes the official `q_v_critic_loss(self, ...)` reads."""

    def __init__(self, critic: Any, config: dtql.Config) -> None:
        self.critic, self.expectile, self.discount = critic, config.expectile, config.gamma


if __name__ == "__main__":
    main()
