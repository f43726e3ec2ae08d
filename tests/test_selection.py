"""Offline model selection (ALGORITHMS.md §1.8, issue #22) and the summary of a run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from diffrl import selection


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
        {"kind": "train", "step": 1, "actor/bc_loss": 1.0},
        {"kind": "train", "step": 2, "actor/bc_loss": 3.0},
        {"kind": "train", "step": 3, "critic/loss": 9.0},  # no bc_loss: ignored
        {"kind": "eval", "step": 3, "score": 0.1},
        {"kind": "eval", "step": 3, "score": 0.2},  # empty window
        {"kind": "train", "step": 4, "actor/bc_loss": 0.5},
        {"kind": "eval", "step": 4, "score": 0.3},
        {
            "kind": "train",
            "step": 5,
            "actor/bc_loss": 100.0,
        },  # after the last evaluation: no window
    ]
    assert selection.window_means(records, "actor/bc_loss") == [2.0, None, 0.5]
    assert selection.window_means(records, "critic/loss") == [9.0, None, None]
    assert selection.window_means([], "actor/bc_loss") == []


@pytest.mark.parametrize(("mode", "picked"), [("clean", 0), ("reference", 3)])
def test_summarize_offline_selection(tmp_path, mode, picked):
    losses = [0.5, 0.2, 0.9, 0.1]  # top_k = 2: clean → eval 0, official mask → eval 3
    lines = []
    for i, loss in enumerate(losses):
        step = 10 * (i + 1)
        lines.append({"kind": "train", "step": step - 5, "actor/bc_loss": loss - 0.05})
        lines.append({"kind": "train", "step": step, "actor/bc_loss": loss + 0.05})
        lines.append(
            {"kind": "eval", "step": step, "score": [0.3, 0.1, 0.2, 0.05][i], "returns": [1.0]}
        )
    cfg = SimpleNamespace(
        algo="dql", dataset="d", preset=None, mode=mode, seed=0, steps=40, top_k=2,
        selection="softmax", candidates=50, policy_output="sample",
    )  # fmt: skip
    out = selection.summarize(lines, cfg, "actor/bc_loss")
    assert out["evaluations"] == 4
    assert out["final"]["step"] == 40 and "returns" not in out["final"]
    assert out["best"]["step"] == 10
    chosen = out["offline_selected"]
    assert chosen["step"] == 10 * (picked + 1)
    assert chosen["window_loss"] == pytest.approx(losses[picked])


def test_early_stop_index_follows_the_official_rule():
    # the first window is compared with 100; training stops after the first rise (tolerance 1)
    assert selection.early_stop_index([0.9, 0.5, 0.6, 0.4]) == 2
    assert selection.early_stop_index([0.9, 0.5, 0.5, 0.4]) == 3  # equal is no rise (min_delta 0)
    assert selection.early_stop_index([101.0, 0.5]) == 0  # above the start value of 100
    assert selection.early_stop_index([0.3]) == 0


@pytest.mark.parametrize(("mode", "picked"), [("clean", 2), ("reference", 0)])
def test_summarize_early_stopped_selects_among_the_evaluations_before_the_stop(mode, picked):
    losses = [0.5, 0.2, 0.3, 0.1]  # rises at eval 2: selection among evals 0-2 only
    lines = []
    for i, loss in enumerate(losses):
        lines.append({"kind": "train", "step": 10 * i + 5, "actor/bc_loss": loss})
        lines.append({"kind": "eval", "step": 10 * (i + 1), "score": float(i)})
    cfg = SimpleNamespace(
        algo="dql", dataset="d", preset=None, mode=mode, seed=0, steps=40, top_k=1,
        selection="softmax", candidates=50, policy_output="sample",
    )  # fmt: skip
    out = selection.summarize(lines, cfg, "actor/bc_loss")
    stopped = out["early_stopped"]
    # argsort([0.5, 0.2, 0.3]) = [1, 2, 0]: clean takes order[1] = eval 2, the official mask
    # the evaluation whose rank is 1 = eval 0; over all four windows both pick eval 1 (step 20)
    assert stopped["stopped_at_step"] == 30 and stopped["step"] == 10 * (picked + 1)
    assert out["offline_selected"]["step"] == 20
