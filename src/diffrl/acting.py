"""The evaluation-time action choice, in one place, for every agent.

An agent only knows how to draw one action per state (`sample`), optionally its deterministic
output (`mean_action`) and optionally how good an action is (`q_value`). The choice of what a
deployed policy does is a run setting, `ActionChoice`:

- `selection = none`: the policy acts alone, by a draw (`policy_output = sample`) or its mean;
- `selection = softmax | argmax`: `candidates` draws per state are ranked by `q_value` (the
  official Diffusion-QL / DTQL evaluation draws one from softmax(Q) at temperature 1).

`make_act_fn` builds the one jitted function every evaluation, `diffrl eval` and `load_policy`
use. The key of a call is `fold_in(key, index)`, folded inside the compiled call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from diffrl.agents.api import SELECTIONS, ActionChoice, Agent, Spec
from diffrl.settings import SettingsError, parse


def choose(agent: Agent, given: dict[str, Any], where: str) -> ActionChoice:
    """The agent's default choice with the `given` fields replaced, checked against what the
    agent can do (ranking needs `q_value`, the mean needs `mean_action`)."""
    choice = parse(ActionChoice, {**dataclasses.asdict(agent.default_choice), **given}, where)
    if choice.ranked and agent.q_value is None:
        raise SettingsError(
            f"{where}: {agent.name} does not rank candidate actions (it has no Q function): "
            f"selection must be 'none' and candidates 1; found selection={choice.selection!r}, "
            f"candidates={choice.candidates}"
        )
    if choice.policy_output == "mean" and agent.mean_action is None:
        raise SettingsError(
            f"{where}: {agent.name} has no mean action: policy_output must be 'sample'"
        )
    return choice


def describe_choice(agent: Agent, choice: ActionChoice) -> str:
    """How the actions of `agent` under `choice` are chosen, in words."""
    if choice.ranked:
        return f"{choice.selection} over {choice.candidates} candidates ranked by the target critic"
    if choice.policy_output == "mean":
        return "the policy's mean action"
    return "the deterministic policy" if agent.deterministic else "policy samples"


def select_candidates(q: jax.Array, actions: jax.Array, how: str, key: jax.Array) -> jax.Array:
    """Pick one of K candidates per state. q: (B, K), actions: (B, K, A)."""
    if how == "softmax":
        idx = jax.random.categorical(key, q, axis=-1)
    elif how == "argmax":
        idx = jnp.argmax(q, axis=-1)
    else:
        raise ValueError(f"unknown candidate selection {how!r}: expected one of {SELECTIONS}")
    return jnp.take_along_axis(actions, idx[:, None, None], axis=1)[:, 0]


def best_of_candidates(
    sample_fn: Callable[[jax.Array, jax.Array], jax.Array],
    q_fn: Callable[[jax.Array, jax.Array], jax.Array],
    obs: jax.Array,
    key: jax.Array,
    k: int,
    how: str,
) -> jax.Array:
    """Sample k actions per state with `sample_fn(obs, key)`, score them with `q_fn(obs, a)`
    and pick one per state by `how` (softmax or argmax)."""
    k_sample, k_pick = jax.random.split(key)
    rep = jnp.repeat(obs, k, axis=0)
    cands = sample_fn(rep, k_sample)
    q = q_fn(rep, cands)
    b = obs.shape[0]
    return select_candidates(q.reshape(b, k), cands.reshape(b, k, -1), how, k_pick)


def policy_action(
    agent: Agent, config: Any, spec: Spec, choice: ActionChoice
) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
    """(state, obs, key) -> actions for a batch of states, as `choice` says (not jitted)."""

    def act(state: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        if choice.ranked:
            return best_of_candidates(
                lambda o, k: agent.sample(config, spec, state, o, k),
                lambda o, a: agent.q_value(config, state, o, a),
                obs,
                key,
                choice.candidates,
                choice.selection,
            )
        if choice.policy_output == "mean":
            return agent.mean_action(config, spec, state, obs)
        return agent.sample(config, spec, state, obs, key)

    return act


def make_act_fn(
    agent: Agent, config: Any, spec: Spec, choice: ActionChoice
) -> Callable[..., jax.Array]:
    """act(state, obs, key, index=0) -> actions, jitted.

    Only the parts of the state the policy reads cross the jit boundary (`agent.policy_state`):
    handing over optimiser states too costs more than the denoiser itself at batch 1. The pruned
    state is cached, since an evaluation calls act on one state many times.
    """
    act = policy_action(agent, config, spec, choice)
    jitted = jax.jit(lambda state, obs, key, index: act(state, obs, jax.random.fold_in(key, index)))
    last: list = [None, None]  # (state, pruned)

    def call(state: Any, obs: jax.Array, key: jax.Array, index: int | jax.Array = 0) -> jax.Array:
        if state is not last[0]:
            last[:] = [state, agent.policy_state(state, choice.ranked)]
        return jitted(last[1], obs, key, index)

    return call


def make_fixed_act_fn(
    agent: Agent, config: Any, spec: Spec, choice: ActionChoice, state: Any
) -> Callable[..., jax.Array]:
    """act(obs, key, index=0) -> actions for one fixed state (a loaded policy), jitted with the
    policy's parameters closed over: a call hands over only the observation, key and index,
    which at batch 1 is about a fifth faster than `make_act_fn` (docs/performance.md), at the
    price of one compilation per state — right for a deployed policy, wrong during training."""
    act = policy_action(agent, config, spec, choice)
    pruned = agent.policy_state(state, choice.ranked)
    jitted = jax.jit(lambda obs, key, index: act(pruned, obs, jax.random.fold_in(key, index)))

    def call(obs: jax.Array, key: jax.Array, index: int | jax.Array = 0) -> jax.Array:
        return jitted(obs, key, index)

    return call
