"""benchmarks/parity.py's training diagnostics: per-window means of the quantities both sides
compute, from diffrl's metrics.jsonl and from what the official `train` calls return (the
drivers themselves need PyTorch and an official checkout: docs/results/parity.md)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parity.py"


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("parity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no torch: the drivers import it when called
    return module


def _train(step: int, **metrics: float | None) -> dict:
    return {"kind": "train", "step": step, "steps_per_s": 1.0, **metrics}


def test_diffrl_window_means_average_each_window_under_the_official_names(parity):
    records = [
        _train(100, **{"behaviour/bc_loss": 1.0, "actor/tr_loss": None, "actor/q_policy": None}),
        _train(200, **{"behaviour/bc_loss": 3.0, "actor/tr_loss": None, "actor/q_policy": None}),
        {"kind": "eval", "step": 200, "return_mean": 5.0},
        _train(300, **{"behaviour/bc_loss": 0.5, "actor/tr_loss": 2.0, "actor/q_policy": 10.0}),
        _train(400, **{"behaviour/bc_loss": 0.7, "actor/tr_loss": 4.0, "actor/q_policy": 30.0}),
    ]
    means = parity.diffrl_window_means(records, "dtql", [200, 400], 200)
    assert means[0]["bc_loss"] == pytest.approx(2.0)
    # pretraining: the policy terms were never computed (null), so the window has none
    assert means[0]["distill_loss"] is None and means[0]["ql_loss"] is None
    assert means[1]["bc_loss"] == pytest.approx(0.6)
    assert means[1]["distill_loss"] == pytest.approx(3.0)
    # the official ql_loss is −mean min Q: diffrl's q_policy enters with its sign flipped
    assert means[1]["ql_loss"] == pytest.approx(-20.0)
    assert means[1]["critic_loss"] is None  # not in these records


def test_official_window_means_pool_the_steps_of_every_train_call(parity):
    returned = [{"bc_loss": [1.0, 2.0], "ql_loss": [-5.0]}, {"bc_loss": [6.0], "ql_loss": []}, None]
    means = parity.official_window_means("dtql", returned)
    assert means["bc_loss"] == pytest.approx(3.0)
    assert means["ql_loss"] == pytest.approx(-5.0)
    assert means["distill_loss"] is None
    # algorithms without compared metrics (the baselines) get none, whatever train returned
    assert parity.official_window_means("td3bc", [{"bc_loss": [1.0]}]) == {}


def test_seed_means_skip_seeds_without_a_value(parity):
    per_seed = [
        [{"kl_loss": 1.0, "Lambda": None}, {"kl_loss": 0.5, "Lambda": 1.2}],
        [{"kl_loss": 3.0, "Lambda": None}, {"kl_loss": 0.7, "Lambda": 1.4}],
        [],  # a run line from before the window means were recorded
    ]
    means = parity.seed_means(per_seed)
    assert means[0] == {"kl_loss": pytest.approx(2.0), "Lambda": None}
    assert means[1] == {"kl_loss": pytest.approx(0.6), "Lambda": pytest.approx(1.3)}


def test_a_sweep_on_other_transitions_is_refused(parity, tmp_path, monkeypatch):
    main = tmp_path / "diffrl" / "hopper-v5" / "medium-v0" / "data" / "main_data.hdf5"
    main.parent.mkdir(parents=True)
    main.write_bytes(b"transitions")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    spec = "minari:diffrl/hopper-v5/medium-v0"
    assert parity.dataset_file(spec) == main
    good = hashlib.sha256(b"transitions").hexdigest()
    parity.check_dataset(spec, good.upper())  # the same file: no complaint
    main.write_bytes(b"other transitions")  # a rebuild under the same id
    with pytest.raises(SystemExit, match=f"has SHA-256 .*expected {good}"):
        parity.check_dataset(spec, good)
    with pytest.raises(SystemExit, match="does not exist"):
        parity.check_dataset("minari:diffrl/hopper-v5/expert-v0", good)
