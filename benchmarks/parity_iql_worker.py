"""The official IQL agent (ikostrikov/implicit_q_learning) in a process of its own, for
benchmarks/parity.py; never imports diffrl.

The official code needs tensorflow-probability's JAX substrate, which does not run under the JAX
diffrl uses, so parity.py starts this script with another interpreter (`--official-python`,
a virtual environment with an older JAX, flax, optax and tensorflow-probability) and drives it
over stdin/stdout, one JSON object per line:

    {"cmd": "train", "steps": N}          -> {"seconds": S}   N official `Learner.update` calls
    {"cmd": "act", "obs": [[...], ...]}   -> {"actions": [[...], ...]}   temperature 0, as its
                                             evaluate() acts (the mean, clipped to [-1, 1])
    {"cmd": "state"}                      -> {"state": BASE64}   networks, optimisers, RNG
    {"cmd": "restore", "state": BASE64}   -> {}
    {"cmd": "quit"}

Batches are drawn as the official Dataset.sample draws them (`np.random.randint`), from the
transitions in --data (an .npz written by parity.py: observations, actions, rewards, masks,
next_observations; rewards already transformed).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import sys
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--settings", required=True, help="JSON: the Learner's keyword arguments")
    p.add_argument("--seed", type=int, required=True)
    args = p.parse_args()
    protocol = os.fdopen(os.dup(1), "w")  # replies only; anything else printed goes to stderr
    os.dup2(2, 1)
    learner, sample = build(args)
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        protocol.write(json.dumps(answer(learner, sample, request)) + "\n")
        protocol.flush()


def build(args: argparse.Namespace):
    import jax

    if not hasattr(jax, "tree_multimap"):  # the official learner.py calls it; removed from jax
        jax.tree_multimap = jax.tree_util.tree_map
    sys.path.insert(0, args.official)
    from common import Batch
    from learner import Learner

    data = dict(np.load(args.data))
    np.random.seed(args.seed)
    settings = json.loads(args.settings)
    settings["hidden_dims"] = tuple(settings["hidden_dims"])  # flax hashes the module: no lists
    obs, act = data["observations"], data["actions"]
    learner = Learner(args.seed, obs[:1], act[:1], **settings)

    def sample(batch_size: int = 256):
        index = np.random.randint(len(obs), size=batch_size)
        return Batch(**{k: data[k][index] for k in Batch._fields})

    return learner, sample


def answer(learner, sample, request: dict) -> dict:
    import flax.serialization

    fields = ("actor", "critic", "value", "target_critic", "rng")
    if request["cmd"] == "train":
        start = time.perf_counter()
        for _ in range(request["steps"]):
            learner.update(sample())
        return {"seconds": time.perf_counter() - start}
    if request["cmd"] == "act":
        obs = np.asarray(request["obs"], np.float32)
        return {"actions": learner.sample_actions(obs, temperature=0.0).tolist()}
    if request["cmd"] == "state":
        nets = flax.serialization.to_bytes(tuple(getattr(learner, f) for f in fields))
        blob = pickle.dumps({"nets": nets, "numpy_rng": np.random.get_state()})
        return {"state": base64.b64encode(blob).decode()}
    if request["cmd"] == "restore":
        blob = pickle.loads(base64.b64decode(request["state"]))
        target = tuple(getattr(learner, f) for f in fields)
        restored = flax.serialization.from_bytes(target, blob["nets"])
        for name, value in zip(fields, restored, strict=True):
            setattr(learner, name, value)
        np.random.set_state(blob["numpy_rng"])
        return {}
    raise ValueError(f"unknown command {request['cmd']!r}")


if __name__ == "__main__":
    main()
