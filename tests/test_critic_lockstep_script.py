"""benchmarks/critic_lockstep.py: the official critic's weights must land where diffrl's critic
reads them (else the lockstep compares two different networks), and a wrong checkout path must be
refused by name before anything runs. PyTorch is not needed: the official layers are stood in for
by objects with the same `.weight` / `.bias` interface, and their forward pass is written out in
NumPy from the official architecture (Linear → LayerNorm → Mish per hidden layer for Q; Linear →
Mish for V)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from diffrl.agents import dtql_nets

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "critic_lockstep.py"


def _module():
    spec = importlib.util.spec_from_file_location("critic_lockstep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Tensor:
    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def detach(self) -> _Tensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.a


class _Layer:
    """A torch Linear (weight (out, in)) or LayerNorm (weight, bias (n,)) stand-in."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], bias: int) -> None:
        self.weight = _Tensor(rng.normal(size=shape).astype(np.float32) * 0.3)
        self.bias = _Tensor(rng.normal(size=bias).astype(np.float32) * 0.1)


def _official_like(rng: np.random.Generator, obs: int, act: int, h: int):
    """Layers at the official nn.Sequential indices (None where the module has no weights)."""

    def q_head():
        lin = [(obs + act, h), (h, h), (h, h), (h, 1)]
        seq = [None] * 10
        for j, (i, o) in zip((0, 3, 6, 9), lin, strict=True):
            seq[j] = _Layer(rng, (o, i), o)
        for j in (1, 4, 7):
            seq[j] = _Layer(rng, (h,), h)
        return seq

    v = [None] * 7
    for j, (i, o) in zip((0, 2, 4, 6), [(obs, h), (h, h), (h, h), (h, 1)], strict=True):
        v[j] = _Layer(rng, (o, i), o)

    class Critic:
        q1_model, q2_model, v_model = q_head(), q_head(), v

    return Critic


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.log1p(np.exp(x)))


def _linear(layer: _Layer, x: np.ndarray) -> np.ndarray:
    return x @ layer.weight.a.T + layer.bias.a


def _q_numpy(head: list, x: np.ndarray) -> np.ndarray:
    for j in (0, 3, 6):
        z = _linear(head[j], x)
        ln = head[j + 1]
        mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        x = _mish((z - mean) / np.sqrt(var + 1e-5) * ln.weight.a + ln.bias.a)
    return _linear(head[9], x)[:, 0]


def _v_numpy(v: list, x: np.ndarray) -> np.ndarray:
    for j in (0, 2, 4):
        x = _mish(_linear(v[j], x))
    return _linear(v[6], x)[:, 0]


def test_moved_weights_compute_the_official_critic():
    rng = np.random.default_rng(0)
    obs_dim, act_dim, hidden = 5, 2, 8
    critic = _official_like(rng, obs_dim, act_dim, hidden)
    params = _module().as_diffrl_params(critic)
    reference = dtql_nets.iql_critic_init(jax.random.PRNGKey(0), obs_dim, act_dim, hidden)
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    s = rng.normal(size=(7, obs_dim)).astype(np.float32)
    a = rng.uniform(-1, 1, size=(7, act_dim)).astype(np.float32)
    q = np.asarray(dtql_nets.iql_q_apply(params, s, a))
    x = np.concatenate([s, a], axis=1)
    np.testing.assert_allclose(q[0], _q_numpy(critic.q1_model, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(q[1], _q_numpy(critic.q2_model, x), rtol=1e-4, atol=1e-5)
    v = np.asarray(dtql_nets.iql_v_apply(params, s))
    np.testing.assert_allclose(v, _v_numpy(critic.v_model, s), rtol=1e-4, atol=1e-5)
    # the two heads differ, so a swapped or duplicated head would have failed above
    assert not np.allclose(q[0], q[1])


def test_a_path_without_the_official_critic_is_refused(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--official", str(tmp_path), "--dataset", "x"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode != 0
    assert str(tmp_path) in done.stderr and "agents/model.py" in done.stderr
