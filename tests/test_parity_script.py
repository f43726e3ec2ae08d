"""benchmarks/parity.py's training diagnostics: per-window means of the quantities both sides
compute, from diffrl's metrics.jsonl and from what the official `train` calls return (the
drivers themselves need PyTorch and an official checkout: docs/results/parity.md)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import subprocess
import sys
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


def test_split_sides_train_only_their_own_implementation(parity, monkeypatch):
    trained = []

    def side(impl):
        def train(args, seed):
            trained.append((impl, seed))
            return {"impl": impl, "seed": seed, "curve": [[1, float(seed)]]}

        return train

    monkeypatch.setattr(parity, "ours", side("diffrl"))
    monkeypatch.setattr(parity, "official", side("official"))
    args = argparse.Namespace(seeds="0,1", sides="official", algo="dql")
    runs = parity.sweep(args, {})
    assert trained == [("official", 0), ("official", 1)]
    assert [(r["impl"], r["seed"]) for r in runs] == trained
    trained.clear()
    args.sides = "diffrl"
    parity.sweep(args, {})
    assert trained == [("diffrl", 0), ("diffrl", 1)]
    trained.clear()
    args.sides = "both"  # the final pass: both sides of seed 0 finished elsewhere are reused
    earlier = {(impl, 0): {"impl": impl, "seed": 0, "curve": [[1, 0.0]]}
               for impl in ("diffrl", "official")}  # fmt: skip
    runs = parity.sweep(args, earlier)
    assert trained == [("diffrl", 1), ("official", 1)]
    assert len(runs) == 4


def test_the_official_side_needs_diffrls_run_of_its_seed(parity, tmp_path):
    args = argparse.Namespace(work=tmp_path, algo="dql")
    with pytest.raises(SystemExit, match="diffrl-seed3: expected diffrl's run .*side first"):
        parity.official(args, 3)


REPORT = SCRIPT.with_name("parity_report.py")


def _run_line(impl: str, seed: int, finals: list[float], bc: list[float]) -> str:
    curve = [[1000 * (i + 1), v] for i, v in enumerate(finals)]
    means = [{"bc_loss": v} for v in bc]
    return json.dumps({"kind": "run", "algo": "dql", "impl": impl, "seed": seed,
                       "curve": curve, "train_means": means})  # fmt: skip


def _report(tmp_path: Path, lines: list[str], *flags: str) -> subprocess.CompletedProcess:
    runs = tmp_path / "runs.jsonl"
    runs.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, str(REPORT), str(runs), *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_compares_only_the_seeds_both_sides_finished(tmp_path):
    lines = [
        _run_line("diffrl", 0, [100, 200], [0.2, 0.1]),
        _run_line("official", 0, [110, 300], [0.2, 0.125]),
        _run_line("diffrl", 1, [100, 400], [0.4, 0.3]),
        _run_line("official", 1, [90, 500], [0.4, 0.375]),
        _run_line("diffrl", 2, [100, 9999], [1.0, 1.0]),  # the official seed 2 is not done
    ]
    done = _report(tmp_path, lines, "--per-seed")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # seeds 0 and 1: diffrl 300 ± 100, official 400 ± 100; difference −100 = the larger std
    assert "diffrl: final 300.0 ± 100.0 (n=2), best 300.0" in out
    assert "official: final 400.0 ± 100.0 (n=2), best 400.0" in out
    assert "difference -100.0: within the seeds' spread" in out
    assert "| 2 | 9999 | not finished | 100, 9999 |  |" in out
    # window 2's seed means of the BC loss: 0.2 against 0.25, diffrl 20 % lower
    assert "| 2000 | 0.2 / 0.25 (-20.0 %) |" in out
    assert "Seed 1:" in out and "| 2000 | 0.3 / 0.375 (-20.0 %) |" in out


def test_report_flags_a_difference_beyond_the_spread(tmp_path):
    lines = [
        _run_line("diffrl", 0, [500], [0.1]),
        _run_line("official", 0, [100], [0.1]),
        _run_line("diffrl", 1, [510], [0.1]),
        _run_line("official", 1, [110], [0.1]),
    ]
    out = _report(tmp_path, lines).stdout
    assert "difference 400.0: **not within** the seeds' spread" in out


def test_report_names_the_broken_line(tmp_path):
    done = _report(tmp_path, [_run_line("diffrl", 0, [1], [0.1]), '{"kind": "run", "algo"'])
    assert done.returncode != 0
    assert "runs.jsonl:2: not a JSON line" in done.stderr


def test_report_gives_welchs_test_of_the_final_means(tmp_path):
    finals = {"diffrl": [1, 2, 3], "official": [4, 5, 6]}
    lines = [
        _run_line(impl, s, [v], [0.1]) for impl, vs in finals.items() for s, v in enumerate(vs)
    ]
    out = _report(tmp_path, lines).stdout
    # t = (2 − 5)/√(1/3 + 1/3) = −3.674; Welch's df = 4 for equal variances and n = 3 a side;
    # two-sided p of t(4) at 3.674 = 0.021; CI −3 ± t₀.₉₇₅(4) = 2.776 × 0.8165 = −3 ± 2.267
    expected = "p = 0.021 (t = -3.67, df = 4.0; 95 % CI of the difference -5.3 to -0.7)"
    assert f"Welch's t-test of the final means: {expected}" in out
    # one seed a side: no test
    one = _report(
        tmp_path, [_run_line("diffrl", 0, [1], [0.1]), _run_line("official", 0, [4], [0.1])]
    )
    assert "difference -3.0" in one.stdout and "Welch" not in one.stdout
    # no spread within either side: no test (t would be infinite), the spread rule still reads
    flat = [
        _run_line(impl, s, [v], [0.1])
        for s in (0, 1)
        for impl, v in (("diffrl", 1), ("official", 2))
    ]
    out = _report(tmp_path, flat).stdout
    assert "difference -1.0: **not within**" in out and "Welch" not in out


def test_report_can_score_each_seed_by_its_last_evaluations(tmp_path):
    lines = [
        _run_line("diffrl", 0, [100, 300], [0.1, 0.1]),
        _run_line("official", 0, [300, 200], [0.1, 0.1]),
        _run_line("diffrl", 1, [200, 500], [0.1, 0.1]),
        _run_line("official", 1, [400, 300], [0.1, 0.1]),
    ]
    out = _report(tmp_path, lines, "--last", "2").stdout
    # per seed: diffrl (100+300)/2 = 200 and (200+500)/2 = 350; official 250 and 350
    assert "diffrl: mean of the last 2 evaluations 275.0 ± 75.0 (n=2)" in out
    assert "official: mean of the last 2 evaluations 300.0 ± 50.0 (n=2)" in out
    assert "difference -25.0: within the seeds' spread" in out
    # the final evaluations alone part by 150 (400 against 250)
    assert "difference 150.0: **not within**" in _report(tmp_path, lines).stdout
