"""Figures of a run (plots.py), drawn from records: learning curves for every run, the constraint
figure for a DiffCPS run, and the BC panel each agent names."""

from __future__ import annotations

import math

import pytest
from runhelpers import assert_png_has_content

from diffrl import plots


def _records(dual: bool, bc_metric: str = "actor/bc_loss") -> list[dict]:
    """Train records every 10 steps (the first without a policy step), evaluations every 20."""
    rows = []
    for step in range(10, 101, 10):
        policy = step > 10
        train = {"kind": "train", "step": step, "critic/loss": 1.0 / step,
                 "critic/q_data": step / 10, bc_metric: 0.5 + 1.0 / step if policy else None,
                 "actor/loss": -step / 10 if policy else None}  # fmt: skip
        if dual:
            lam = 1.0 + step / 100 if policy else None
            train |= {"dual/lambda": lam, "dual/lambda_used": lam and min(lam, 1.5),
                      "dual/bc_minus_kappa": train[bc_metric] - 0.3 if policy else None,
                      "dual/constraint_violated": 1.0 if policy else None}  # fmt: skip
        rows.append(train)
        if step % 20 == 0:
            rows.append({"kind": "eval", "step": step, "score": float(step)})
    return rows


def test_series_skip_chunks_without_the_metric():
    steps, values = plots._series(_records(dual=False), "actor/loss")
    assert steps == list(range(20, 101, 10)) and values[0] == -2.0
    nan = [{"kind": "train", "step": 1, "x": math.nan}, {"kind": "eval", "step": 1, "x": 3.0}]
    assert plots._series(nan, "x") == ([], [])  # NaN and eval records are not train values


def test_kappa_is_recovered_from_the_records():
    assert plots._kappa(_records(dual=True)) == pytest.approx(0.3)
    assert plots._kappa(_records(dual=False)) is None


def test_learning_curves_have_a_panel_per_curve(tmp_path):
    path = plots.plot_learning_curves(tmp_path, records=_records(dual=False))
    assert path == tmp_path / "curves.png"
    assert assert_png_has_content(path, 1500, 300) == (1500, 300)
    assert plots._curves("behaviour/bc_loss")[1] == "behaviour/bc_loss"  # DTQL's BC panel


def test_the_constraint_figure_only_for_records_with_a_multiplier(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert plots.plot_run(plain, _records(dual=False), "actor/bc_loss") == [plain / "curves.png"]
    with pytest.raises(ValueError, match="no 'dual/lambda' records"):
        plots.plot_constraint(plain, records=_records(dual=False))
    dual = tmp_path / "dual"
    dual.mkdir()
    paths = plots.plot_run(dual, _records(dual=True), "actor/bc_loss")
    assert paths == [dual / "curves.png", dual / "constraint.png"]
    assert assert_png_has_content(dual / "constraint.png", 1100, 320) == (1100, 320)
