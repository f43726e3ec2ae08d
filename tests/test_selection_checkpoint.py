"""Offline model selection (ALGORITHMS.md §1.8, issue #22) and checkpoint files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from flax import serialization

from diffrl import checkpoint, optim, selection
from diffrl.agents import dql
from diffrl.checkpoint import CheckpointError


# -- offline selection -----------------------------------------------------------------------------
def test_offline_index_spec_example():
    losses = [0.5, 0.2, 0.9, 0.1]  # argsort = [3, 1, 0, 2]
    # top_k = 1: the second-smallest loss is evaluation 1; the official mask picks i with
    # argsort[i] == 1, which is also 1 here
    assert selection.offline_index(losses, 1, "clean") == 1
    assert selection.offline_index(losses, 1, "reference") == 1
    assert int(np.flatnonzero(np.argsort(losses) == 1)[0]) == 1


@pytest.mark.parametrize(
    ("top_k", "clean", "reference"),
    [
        (0, 3, 2),  # smallest loss is evaluation 3; argsort[2] == 0 → the mask picks 2
        (1, 1, 1),
        (2, 0, 3),  # third-smallest is evaluation 0; argsort[3] == 2 → the mask picks 3
        (3, 2, 0),
    ],
)
def test_offline_index_clean_vs_official_mask(top_k, clean, reference):
    losses = [0.5, 0.2, 0.9, 0.1]
    order = np.argsort(losses)
    assert clean == order[top_k]
    assert order[reference] == top_k
    assert selection.offline_index(losses, top_k, "clean") == clean
    assert selection.offline_index(losses, top_k, "reference") == reference


def test_offline_index_agree_when_monotone_and_cap_top_k():
    # decreasing over training: argsort is the reversal, an involution, so both rules agree
    losses = [0.9, 0.7, 0.4, 0.3, 0.1]
    for k in range(5):
        assert selection.offline_index(losses, k, "clean") == 4 - k
        assert selection.offline_index(losses, k, "reference") == 4 - k
    # top_k is capped at (#evaluations − 1)
    losses = [0.3, 0.1, 0.2]  # argsort = [1, 2, 0]; top_k 5 → 2
    assert selection.offline_index(losses, 5, "clean") == 0  # the largest loss
    assert selection.offline_index(losses, 5, "reference") == 1  # argsort[1] == 2
    assert selection.offline_index(losses, 2, "reference") == 1
    assert selection.offline_index([0.4], 2, "clean") == 0
    assert selection.offline_index([0.4], 2, "reference") == 0


def test_window_means():
    records = [
        {"kind": "train", "step": 1, "bc_loss": 1.0},
        {"kind": "train", "step": 2, "bc_loss": 3.0},
        {"kind": "train", "step": 3, "critic_loss": 9.0},  # no bc_loss: ignored
        {"kind": "eval", "step": 3, "score": 0.1},
        {"kind": "eval", "step": 3, "score": 0.2},  # empty window
        {"kind": "train", "step": 4, "bc_loss": 0.5},
        {"kind": "eval", "step": 4, "score": 0.3},
        {"kind": "train", "step": 5, "bc_loss": 100.0},  # after the last evaluation: no window
    ]
    assert selection.window_means(records, "bc_loss") == [2.0, None, 0.5]
    assert selection.window_means(records, "critic_loss") == [9.0, None, None]
    assert selection.window_means([], "bc_loss") == []


@pytest.mark.parametrize(("mode", "picked"), [("clean", 0), ("reference", 3)])
def test_summarize_offline_selection(tmp_path, mode, picked):
    losses = [0.5, 0.2, 0.9, 0.1]  # top_k = 2: clean → eval 0, official mask → eval 3
    lines = []
    for i, loss in enumerate(losses):
        step = 10 * (i + 1)
        lines.append({"kind": "train", "step": step - 5, "bc_loss": loss - 0.05})
        lines.append({"kind": "train", "step": step, "bc_loss": loss + 0.05})
        lines.append(
            {"kind": "eval", "step": step, "score": [0.3, 0.1, 0.2, 0.05][i], "returns": [1.0]}
        )
    cfg = SimpleNamespace(
        algo="dql", dataset="d", preset=None, mode=mode, seed=0, steps=40, top_k=2,
        selection="softmax", candidates=50, policy_output="sample",
    )  # fmt: skip
    out = selection.summarize(lines, cfg, "bc_loss")
    assert out["evaluations"] == 4
    assert out["final"]["step"] == 40 and "returns" not in out["final"]
    assert out["best"]["step"] == 10
    chosen = out["offline_selected"]
    assert chosen["step"] == 10 * (picked + 1)
    assert chosen["window_loss"] == pytest.approx(losses[picked])


# -- checkpoints ----------------------------------------------------------------------------------
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


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "not_a_checkpoint"])
def test_load_damaged_file_raises_with_path(tmp_path, damage):
    path, template = _saved(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\xc1 this is not msgpack \x00\xff" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(serialization.msgpack_serialize({"weights": np.zeros(3)}))
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path, template)
    assert str(path) in str(err.value)


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
