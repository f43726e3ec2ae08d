"""The agent contract (agents/api.py), checked the same way for every registered agent.

Per agent: init → a scanned, jitted chunk of updates (the loop's own chunk function) → sampled
actions of the right shape inside the box → a checkpoint round trip → exact resume: two chunks
run straight equal one chunk, a save and load, and the second chunk.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runhelpers import random_batch

from diffrl import checkpoint
from diffrl.acting import ActionChoice, make_act_fn
from diffrl.agents import ALGORITHMS, get_agent
from diffrl.agents.api import Agent, Spec
from diffrl.run import make_chunk_fn

SPEC = Spec(obs_dim=3, action_dim=2, max_action=0.5)
TINY = {  # the smallest networks that still exercise every part of an agent
    "dql": {"hidden": 16, "n_steps": 2},
    "diffcps": {"hidden": 16, "n_steps": 2},
    "dtql": {"hidden": 16, "pretrain_steps": 3, "total_steps": 20},
    "bc": {"hidden": 16},
    "diffbc": {"hidden": 16, "n_steps": 2},
    "cvaebc": {"hidden": 16},
    "td3bc": {"hidden": 16},
    "iql": {"hidden": 16},
    "fql": {"hidden": 16, "layers": 2, "flow_steps": 2},
}
CHUNK = 4
pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


def _leaves_equal(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def test_every_registered_agent_is_checked():
    assert set(TINY) == set(ALGORITHMS)


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def agent_run(request):
    """(agent, config, initial state, data, chunk fn) with one compilation per agent."""
    agent = get_agent(request.param)
    config = agent.Config(**TINY[request.param])
    data = random_batch(SPEC, 0, 64)
    state = agent.init(config, SPEC, jax.random.PRNGKey(0))
    if agent.with_data is not None:
        state = agent.with_data(config, state, np.asarray(data.observations))
    chunk = make_chunk_fn(agent, config, SPEC, 8, CHUNK)
    return agent, config, state, data, chunk


def test_declares_the_contract(agent_run):
    agent, config, state, _, _ = agent_run
    assert isinstance(agent, Agent) and agent.name in ALGORITHMS
    assert dataclasses.is_dataclass(config) and isinstance(state, agent.State)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden = 1
    assert isinstance(agent.selection_metric, str)
    # an agent may rank candidates only if it can score them, and acts as it declares
    assert (agent.default_choice.ranked) <= (agent.q_value is not None)
    assert agent.default_choice.policy_output != "mean" or agent.mean_action is not None


def test_a_scanned_chunk_updates_and_logs(agent_run):
    agent, config, state, data, chunk = agent_run
    copy = jax.tree.map(jnp.copy, state)  # the chunk donates its input state
    new, metrics = chunk(copy, data, jax.random.PRNGKey(1))
    assert int(new.step) == CHUNK
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert agent.selection_metric in metrics
    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
    # a metric computed on only some steps (delayed actors, pretraining) is a mean over those
    assert all(np.isfinite(v) for v in values.values()), values
    # the policy learned: with the same key, its actions move (the step counter alone is not it)
    obs = data.observations[:8]
    sample = jax.jit(agent.sample, static_argnums=(0, 1))
    before = sample(config, SPEC, state, obs, jax.random.PRNGKey(7))
    after = sample(config, SPEC, new, obs, jax.random.PRNGKey(7))
    assert not np.array_equal(np.asarray(before), np.asarray(after))
    if agent.q_value is not None:  # and so did the critic that ranks candidates
        acts = data.actions[:8]
        q0, q1 = agent.q_value(config, state, obs, acts), agent.q_value(config, new, obs, acts)
        assert not np.array_equal(np.asarray(q0), np.asarray(q1))


@pytest.mark.parametrize("ranked", [False, True])
def test_actions_have_the_shape_and_stay_in_the_box(agent_run, ranked):
    agent, config, state, _, _ = agent_run
    if ranked and agent.q_value is None:
        pytest.skip(f"{agent.name} ranks no candidates")
    choice = ActionChoice("softmax", 5) if ranked else ActionChoice()
    act = make_act_fn(agent, config, SPEC, choice)
    obs = jnp.asarray(np.random.default_rng(2).normal(size=(7, SPEC.obs_dim)) * 5, jnp.float32)
    actions = np.asarray(act(state, obs, jax.random.PRNGKey(3)))
    assert actions.shape == (7, SPEC.action_dim) and np.isfinite(actions).all()
    assert np.all(np.abs(actions) <= np.float32(SPEC.max_action))
    if not agent.deterministic:  # other keys, other draws
        again = np.asarray(act(state, obs, jax.random.PRNGKey(4)))
        assert not np.array_equal(actions, again)


def test_checkpoint_round_trip_and_exact_resume(agent_run, tmp_path):
    agent, config, state, data, chunk = agent_run
    key = jax.random.PRNGKey(5)
    # straight: two chunks
    s, _ = chunk(jax.tree.map(jnp.copy, state), data, key)
    straight, m_straight = chunk(s, data, key)
    # resumed: one chunk, a checkpoint written and read back, the second chunk
    s, _ = chunk(jax.tree.map(jnp.copy, state), data, key)
    path = tmp_path / f"{agent.name}.msgpack"
    checkpoint.save(path, s, {"step": CHUNK})
    loaded, meta = checkpoint.load(path, state)
    assert meta == {"step": CHUNK} and _leaves_equal(loaded, s)
    assert isinstance(loaded, agent.State)
    resumed, m_resumed = chunk(loaded, data, key)
    assert _leaves_equal(resumed, straight)
    assert set(m_resumed) == set(m_straight)
    for k in m_straight:
        np.testing.assert_array_equal(np.asarray(m_resumed[k]), np.asarray(m_straight[k]), k)
