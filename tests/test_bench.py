"""`diffrl bench`: jobs, skipping finished runs, failed jobs reported, tables and curves, Ray."""

from __future__ import annotations

import csv
import json

import pytest

from diffrl import bench
from diffrl.cli import main
from diffrl.runlog import read_records

TINY = {"hidden": 16, "pretrain_steps": 20, "selection": "none"}


def tiny_jobs(datasets, seeds=(0,)):
    return bench.make_jobs(["dtql"], datasets, list(seeds), steps=40, eval_every=20, sets=TINY)


def test_overrides_go_to_the_algorithms_that_have_them():
    per_algo = bench.split_overrides({"hidden": 64, "dtql.alpha": 5.0}, ["dql", "dtql"])
    assert per_algo == {"dql": {"hidden": 64}, "dtql": {"hidden": 64, "alpha": 5.0}}
    assert bench.split_overrides({"kappa": 0.2}, ["dql", "diffcps"]) == {
        "dql": {},
        "diffcps": {"kappa": 0.2},
    }
    with pytest.raises(KeyError, match="no algorithm of .* has a setting 'nonsense'"):
        bench.split_overrides({"nonsense": 1}, ["dql"])
    with pytest.raises(KeyError, match="no algorithm of \\['dql'\\] has a setting 'alpha'"):
        bench.split_overrides({"dql.alpha": 1.0}, ["dql", "dtql"])
    with pytest.raises(KeyError, match="not one of the sweep's algorithms"):
        bench.split_overrides({"iql.alpha": 1.0}, ["dql"])


def test_jobs_cover_the_grid_with_their_own_run_directories(tmp_path):
    jobs = bench.make_jobs(["dql", "dtql"], ["bandit:corners", "data/x.hdf5"], [0, 1, 2])
    assert len(jobs) == 12
    dirs = {j.run_dir(tmp_path) for j in jobs}
    assert len(dirs) == 12
    assert jobs[0].run_dir(tmp_path) == tmp_path / "runs" / "corners" / "dql" / "seed0"
    assert bench.dataset_slug("minari:diffrl/hopper-v5/medium-v0") == "diffrl_hopper-v5_medium-v0"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished tiny jobs and one that fails on its dataset, run in-process."""
    out = tmp_path_factory.mktemp("bench")
    jobs = tiny_jobs(["bandit:corners"], seeds=(0, 1)) + tiny_jobs(["missing.npz"])
    statuses = [bench.run_job(job, str(out)) for job in jobs]
    return out, jobs, statuses


def test_jobs_train_then_are_skipped(finished):
    out, jobs, statuses = finished
    assert [s["status"] for s in statuses] == ["trained", "trained", "failed"]
    summary = json.loads((jobs[0].run_dir(out) / "summary.json").read_text())
    assert summary["algo"] == "dtql" and summary["steps"] == 40 and summary["seed"] == 0
    assert bench.run_job(jobs[0], str(out))["status"] == "skipped"


def test_a_failed_job_is_reported_with_its_error(finished):
    out, jobs, statuses = finished
    assert "missing.npz" in statuses[2]["error"]
    assert "DatasetError" in statuses[2]["error"]
    rows = bench.collect(jobs, out, statuses)
    assert rows[2]["status"] == "failed" and "missing.npz" in rows[2]["error"]


def test_tables_and_curves(finished):
    out, jobs, statuses = finished
    rows = bench.collect(jobs, out, statuses)
    scores = [r["final_score"] for r in rows[:2]]
    assert all(isinstance(s, float) for s in scores)
    text = bench.results_markdown(rows, "diffrl bench ...", ["dtql"], ["bandit:corners"])
    assert "Command: `diffrl bench ...`" in text
    mean, std = sum(scores) / 2, abs(scores[0] - scores[1]) / 2
    assert f"| corners | dtql | {mean:.4g} ± {std:.2g} |" in text
    # failed jobs are always listed, with their error
    assert "## Failed jobs" in text and "dtql missing.npz seed 0: DatasetError" in text
    bench.write_csv(rows, out / "results.csv")
    table = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in table] == ["ok", "ok", "failed"]
    assert float(table[0]["final_score"]) == pytest.approx(scores[0])
    for row in rows[:2]:  # every evaluation is timed, and the table adds them up
        evals = [r for r in read_records(out / row["run_dir"] / "metrics.jsonl")
                 if r["kind"] == "eval"]  # fmt: skip
        assert len(evals) == 2 and all(r["eval_seconds"] > 0 for r in evals)
        assert row["eval_seconds"] == round(sum(r["eval_seconds"] for r in evals), 1)
        assert row["train_seconds"] > 0
    cost = sum(r["train_seconds"] for r in rows[:2]) / 2
    assert f"| 40 | {cost:.0f} |" in text
    (path,) = bench.plot_curves(rows, out, ["bandit:corners"], ["dtql"])
    assert path.name == "curves-corners.png" and path.stat().st_size > 5_000


def test_run_cost_adds_chunk_times_and_evaluations():
    records = [
        {"kind": "train", "step": 100, "steps_per_s": 50.0},  # 2 s
        {"kind": "eval", "step": 100, "eval_seconds": 1.5},
        {"kind": "train", "step": 300, "steps_per_s": 100.0},  # 2 s
        {"kind": "eval", "step": 300, "eval_seconds": 0.5},
    ]
    assert bench.run_cost(records) == {"train_seconds": 4.0, "eval_seconds": 2.0}


@pytest.fixture
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_the_cli_runs_jobs_on_ray_and_skips_them_the_second_time(tmp_path, capsys, ray_session):
    args = ["bench", "--algos", "dtql", "--datasets", "bandit:corners", "--seeds", "0",
            "--steps", "40", "--eval-every", "20", "--out", str(tmp_path)]  # fmt: skip
    args += [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "dtql bandit:corners seed 0: trained" in first
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results")
    assert main(args) == 0
    assert "seed 0: skipped" in capsys.readouterr().out


def test_a_preset_applies_to_the_algorithms_that_have_it():
    jobs = bench.make_jobs(["bc", "iql"], ["x.npz"], [0], steps=100, preset="hopper-medium-v2")
    assert [(j.algo, j.preset) for j in jobs] == [("bc", None), ("iql", "hopper-medium-v2")]
    cfg = bench.job_config(jobs[1])
    assert cfg.steps == 100  # the explicit budget wins over the preset's epochs
    assert cfg.reward_transform == "iql_locomotion" and cfg.agent["temperature"] == 3.0
    with pytest.raises(KeyError, match="none of \\['bc'\\] has a preset"):
        bench.make_jobs(["bc"], ["x.npz"], [0], preset="hopper-medium-v2")
    per_dataset = ["hopper-medium-v2", "walker2d-medium-v2"]
    jobs = bench.make_jobs(["dtql"], ["h.npz", "w.npz"], [0], steps=100, preset=per_dataset)
    assert [bench.job_config(j).agent["lr"] for j in jobs] == [1e-4, 3e-4]
