"""Checkpoint files: round trips of agent states, and damaged or mismatched files refused."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from diffrl import checkpoint, optim
from diffrl.agents import dql
from diffrl.checkpoint import CheckpointError
from diffrl.errors import CheckpointDamaged


def _tree(seed=0, hidden=4):
    rng = np.random.default_rng(seed)
    return {
        "actor": {
            "l0": {
                "w": rng.normal(size=(3, hidden)).astype(np.float32),
                "b": rng.normal(size=hidden).astype(np.float32),
            }
        },
        "step": np.int32(17),
        "counts": np.arange(5, dtype=np.int64),
    }


def _assert_tree_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def test_save_load_round_trip(tmp_path):
    tree = _tree()
    meta = {"step": 17, "fingerprint": "abc123", "algo": "dql", "nested": {"a": [1, 2.5]}}
    path = tmp_path / "sub" / "ckpt.msgpack"  # the parent directory is created
    checkpoint.save(path, tree, meta)
    template = jax.tree.map(np.zeros_like, tree)
    loaded, loaded_meta = checkpoint.load(path, template)
    _assert_tree_equal(loaded, tree)
    assert loaded_meta == meta


def test_save_load_round_trip_agent_state(tmp_path):
    params = _tree()["actor"]
    opt = optim.adam(1.0).init(params)
    state = dql.State(
        actor=params,
        actor_opt=opt,
        ema_actor=params,
        critic=params,
        critic_opt=opt,
        critic_target=params,
        step=np.int32(5),
    )
    checkpoint.save(tmp_path / "s.msgpack", state, {"step": 5})
    template = jax.tree.map(np.zeros_like, state)
    loaded, meta = checkpoint.load(tmp_path / "s.msgpack", template)
    assert isinstance(loaded, dql.State)
    _assert_tree_equal(loaded, state)
    assert meta == {"step": 5}


def _saved(tmp_path) -> tuple[Path, dict]:
    tree = _tree()
    path = tmp_path / "ckpt.msgpack"
    checkpoint.save(path, tree, {"step": 1})
    return path, jax.tree.map(np.zeros_like, tree)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "not_a_checkpoint", "flipped"])
def test_load_damaged_file_raises_with_path(tmp_path, damage):
    path, template = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\xc1 this is not msgpack \x00\xff" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flipped":  # one bit inside the state: still parses, only the checksum sees it
        raw = bytearray(data)
        raw[len(raw) // 2] ^= 1
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(serialization.msgpack_serialize({"weights": np.zeros(3)}))
    with pytest.raises(CheckpointDamaged) as err:  # a resume may fall back past it
        checkpoint.load(path, template)
    assert str(path) in str(err.value)
    if damage == "flipped":
        assert "checksum does not match" in str(err.value)


def test_load_missing_file_raises(tmp_path):
    path = tmp_path / "nope.msgpack"
    with pytest.raises(CheckpointError, match="not found") as err:
        checkpoint.load(path, _tree())
    assert str(path) in str(err.value)


def test_load_mismatched_template_structure_raises(tmp_path):
    path, template = _saved(tmp_path)
    other = {**template, "critic": {"w": np.zeros(2)}}  # a key the checkpoint lacks
    with pytest.raises(CheckpointError, match="does not match") as err:
        checkpoint.load(path, other)
    assert str(path) in str(err.value)
    assert not isinstance(err.value, CheckpointDamaged)  # a resume refuses, never skips it


def _mismatched_template(kind):
    saved = _tree(hidden=4)
    if kind == "shape":  # same keys, a wider layer (another --hidden)
        other = _tree(hidden=8)
    elif kind == "dtype":
        other = jax.tree.map(lambda x: np.asarray(x).astype(np.float64), saved)
    else:  # the checkpoint has a layer the template lacks (a deeper network)
        other = {**saved, "actor": {"l0": saved["actor"]["l0"]}}
        saved["actor"]["l1"] = {"w": np.zeros((4, 2), np.float32), "b": np.zeros(2, np.float32)}
    return saved, jax.tree.map(np.zeros_like, other)


@pytest.mark.parametrize("kind", ["shape", "dtype", "extra_layer"])
def test_load_mismatched_template_arrays_raises(tmp_path, kind):
    saved, template = _mismatched_template(kind)
    path = tmp_path / "ckpt.msgpack"
    checkpoint.save(path, saved, {"step": 1})
    with pytest.raises(CheckpointError, match="does not match"):
        checkpoint.load(path, template)
