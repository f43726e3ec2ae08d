"""The action choice: one wrapper for every agent, equal to the agents' own act() before it.

`tests/data/act_reference.npz` holds the actions the pre-refactor `train.make_act_fn` (each agent's
own `act` with `selection` / `candidates` arguments, commit 6f2580e) returned for every agent and
choice, on a state initialised from PRNGKey(1) for obs 3 / action 2, fixed observations, key
PRNGKey(2) and call indices 0 and 3. The wrapper must reproduce them exactly.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl.acting import ActionChoice, choose, make_act_fn, select_candidates
from diffrl.agents import get_agent
from diffrl.agents.api import Spec
from diffrl.settings import SettingsError


@pytest.fixture(scope="module", autouse=True)
def _fresh_compilations():
    """Compile afresh: a module run earlier may have compiled ops under other XLA settings
    (test_baselines turns most optimisations off), and bit-for-bit needs the default ones."""
    jax.clear_caches()


REFERENCE = np.load(Path(__file__).parent / "data" / "act_reference.npz")
CASES = sorted(k for k in REFERENCE.files if k != "obs")
SPEC = Spec(3, 2, 1.0)


@pytest.mark.parametrize("case", CASES)
def test_wrapper_reproduces_the_old_act(case: str) -> None:
    name, output, selection, candidates, index = case.split("|")
    agent = get_agent(name)
    given = {"selection": selection, "candidates": int(candidates)}
    if output != "-":
        given["policy_output"] = output
    choice = choose(agent, given, "test")
    config = agent.Config()
    state = agent.init(config, SPEC, jax.random.PRNGKey(1))
    act = make_act_fn(agent, config, SPEC, choice)
    actions = act(state, jnp.asarray(REFERENCE["obs"]), jax.random.PRNGKey(2), int(index))
    np.testing.assert_array_equal(np.asarray(actions), REFERENCE[case])


def test_reference_covers_every_agent_and_choice() -> None:
    names = {c.split("|")[0] for c in CASES}
    assert names == {"dql", "diffcps", "dtql", "bc", "diffbc", "cvaebc", "td3bc", "iql"}
    ranked = {c.split("|")[0] for c in CASES if c.split("|")[2] != "none"}
    assert ranked == {"dql", "diffcps", "dtql", "iql"}


@pytest.mark.parametrize("name", ["bc", "diffbc", "cvaebc", "td3bc"])
def test_agents_without_q_refuse_ranking(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} does not rank candidate actions"):
        choose(get_agent(name), {"selection": "softmax", "candidates": 10}, "run")
    choose(get_agent(name), {"selection": "softmax", "candidates": 1}, "run")  # one: plain


@pytest.mark.parametrize("name", ["dql", "diffcps", "cvaebc", "diffbc", "td3bc"])
def test_agents_without_a_mean_refuse_it(name: str) -> None:
    with pytest.raises(SettingsError, match="has no mean action"):
        choose(get_agent(name), {"policy_output": "mean"}, "run")


def test_choice_is_typed() -> None:
    with pytest.raises(ValueError, match="'none', 'softmax' or 'argmax'"):
        ActionChoice(selection="best")
    with pytest.raises(ValueError, match="greater than 0"):
        ActionChoice(candidates=0)
    assert ActionChoice(candidates="8").candidates == 8


def test_select_candidates_argmax_and_softmax() -> None:
    q = jnp.asarray([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0]])
    actions = jnp.arange(12.0).reshape(2, 3, 2)
    best = select_candidates(q, actions, "argmax", jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(best), [[2.0, 3.0], [6.0, 7.0]])
    # softmax at temperature 1: a Q gap of 50 makes the best candidate all but certain
    picks = [select_candidates(q * 10, actions, "softmax", jax.random.PRNGKey(i))
             for i in range(20)]
    assert all(np.array_equal(np.asarray(p), np.asarray(best)) for p in picks)
