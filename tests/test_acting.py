"""The action choice: one wrapper for every agent, equal to the agents' own act() before it.

`tests/data/act_reference.npz` holds the actions the pre-refactor `train.make_act_fn` (each agent's
own `act` with `selection` / `candidates` arguments, commit 6f2580e) returned for every agent and
choice, on a state initialised from PRNGKey(1) for obs 3 / action 2, fixed observations, key
PRNGKey(2) and call indices 0 and 3. The wrapper must reproduce them: bit for bit on the CPU they
were recorded on (an AMD EPYC); other CPUs (an Intel Xeon with AVX-512 here) get XLA code that
rounds the last bit differently (at most 1.5e-7 measured), so the check allows 1e-6, far below
what any change of choice (another candidate, another sample) moves an action.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffrl.acting import choose, make_act_fn, select_candidates
from diffrl.agents import get_agent
from diffrl.agents.api import ActionChoice, Spec
from diffrl.settings import SettingsError


@pytest.fixture(scope="module", autouse=True)
def _fresh_compilations():
    """Compile afresh: a module run earlier may have compiled ops under other XLA settings
    (test_baselines turns most optimisations off), and bit-for-bit needs the default ones."""
    jax.clear_caches()


REFERENCE = np.load(Path(__file__).parent / "data" / "act_reference.npz")
CASES = sorted(k for k in REFERENCE.files if k != "obs")
SPEC = Spec(3, 2, 1.0)
ULP_SLACK = 1e-6  # float32 rounding across CPUs; actions lie in [-1, 1]


@functools.cache
def _state(name: str):
    """The state every recorded case acted with: default Config, initialised from PRNGKey(1)."""
    agent = get_agent(name)
    return agent.init(agent.Config(), SPEC, jax.random.PRNGKey(1))


@functools.cache
def _act(name: str, output: str, selection: str, candidates: int):
    """One act function per choice: both call indices of a case share its compilation."""
    agent = get_agent(name)
    given = {"selection": selection, "candidates": candidates}
    if output != "-":
        given["policy_output"] = output
    return make_act_fn(agent, agent.Config(), SPEC, choose(agent, given, "test"))


@pytest.mark.parametrize("case", CASES)
def test_wrapper_reproduces_the_old_act(case: str) -> None:
    name, output, selection, candidates, index = case.split("|")
    act = _act(name, output, selection, int(candidates))
    actions = act(_state(name), jnp.asarray(REFERENCE["obs"]), jax.random.PRNGKey(2), int(index))
    np.testing.assert_allclose(np.asarray(actions), REFERENCE[case], rtol=0, atol=ULP_SLACK)


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


def _candidates(b, k, a):
    # action entries encode (state, candidate) so the pick can be read back
    return jnp.arange(b * k * a, dtype=jnp.float32).reshape(b, k, a)


def test_select_candidates_argmax():
    q = jnp.array([[0.1, 0.9, 0.3], [2.0, -1.0, 1.0]])
    acts = _candidates(2, 3, 2)
    out = select_candidates(q, acts, "argmax", jax.random.PRNGKey(0))
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, np.stack([acts[0, 1], acts[1, 0]]))


def test_select_candidates_softmax_behaviour():
    b, k = 4000, 4
    acts = _candidates(b, k, 1)

    def picked(q, key):
        out = np.asarray(select_candidates(q, acts, "softmax", key))[:, 0]
        return (out.astype(int) - np.arange(b) * k).astype(int)  # candidate index per state

    gap = jnp.tile(jnp.array([0.0, 1000.0, 0.0, 0.0]), (b, 1))
    assert np.all(picked(gap, jax.random.PRNGKey(1)) == 1)  # huge Q gap: the best, always

    equal = jnp.zeros((b, k))
    counts = np.bincount(picked(equal, jax.random.PRNGKey(2)), minlength=k)
    assert np.all(np.abs(counts - b / k) < 5 * math.sqrt(b / k))  # roughly uniform

    probs = np.array([0.1, 0.2, 0.3, 0.4])  # temperature 1: P(i) = softmax(Q)_i
    logq = jnp.tile(jnp.log(jnp.asarray(probs)), (b, 1))
    freq = np.bincount(picked(logq, jax.random.PRNGKey(3)), minlength=k) / b
    np.testing.assert_allclose(freq, probs, atol=0.03)


def test_select_candidates_unknown_raises():
    with pytest.raises(ValueError):
        select_candidates(jnp.zeros((1, 2)), jnp.zeros((1, 2, 1)), "max", None)


@pytest.mark.parametrize("ranked", [False, True])
def test_a_loaded_policy_with_its_parameters_compiled_in_acts_as_make_act_fn(ranked) -> None:
    from diffrl.acting import make_fixed_act_fn

    agent, spec = get_agent("dql"), Spec(3, 2, 1.0)
    cfg = agent.Config(hidden=16, n_steps=2)
    state = agent.init(cfg, spec, jax.random.PRNGKey(0))
    choice = ActionChoice(selection="softmax", candidates=4) if ranked else ActionChoice()
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    key = jax.random.PRNGKey(2)
    fixed = make_fixed_act_fn(agent, cfg, spec, choice, state)
    general = make_act_fn(agent, cfg, spec, choice)
    for index in (0, 7):
        np.testing.assert_allclose(
            fixed(obs, key, index), general(state, obs, key, index), atol=1e-6
        )
