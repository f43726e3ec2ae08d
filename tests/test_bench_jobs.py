"""`diffrl bench`, the job side: overrides, the job grid, presets, skipping finished runs,
failed jobs reported, Ray; and no import cycle with the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import diffrl
from diffrl import bench
from diffrl.cli import main
from diffrl.settings import SettingsError


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


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module's Ray tests (starting one costs tens of seconds)."""
    import ray

    yield
    ray.shutdown()


def test_the_cli_runs_jobs_on_ray_and_skips_them_the_second_time(tmp_path, capsys, ray_session):
    # BC: Ray's side is under test here; the in-process jobs (`finished`) cover DTQL's
    args = ["bench", "--algos", "bc", "--datasets", "bandit:corners", "--seeds", "0", "--steps",
            "40", "--eval-every", "20", "--set", "hidden=8", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "bc bandit:corners seed 0: trained" in first
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results")
    assert main(args) == 0
    assert "seed 0: skipped" in capsys.readouterr().out


def test_vmap_seeds_trains_each_group_as_one_program(tmp_path, capsys, ray_session):
    args = ["bench", "--algos", "bc", "--datasets", "bandit:corners", "--seeds", "0,1",
            "--steps", "40", "--eval-every", "20", "--set", "hidden=8", "--vmap-seeds",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "seed 0: trained" in first and "seed 1: trained" in first
    # one task trained both: they report the group's one wall time (separate tasks never match)
    times = re.findall(r"seed \d: trained \(([\d.]+) s\)", first)
    assert len(times) == 2 and times[0] == times[1], first
    for seed in (0, 1):
        run_dir = tmp_path / "runs" / "corners" / "bc" / f"seed{seed}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["seed"] == seed and summary["final"]["step"] == 40
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "seed 0: skipped" in again and "seed 1: skipped" in again
    groups = bench.jobs.seed_groups(bench.make_jobs(["bc", "iql"], ["x.npz"], [0, 1, 2]))
    assert groups == [[0, 1, 2], [3, 4, 5]]


def test_a_preset_applies_to_the_algorithms_that_have_it():
    jobs = bench.make_jobs(["bc", "iql"], ["x.npz"], [0], steps=100, preset="hopper-medium-v2")
    assert [(j.algo, j.preset) for j in jobs] == [("bc", None), ("iql", "hopper-medium-v2")]
    cfg = bench.job_config(jobs[1])
    assert cfg.steps == 100  # the explicit budget wins over the preset's epochs
    assert cfg.reward_transform == "iql_locomotion" and cfg.agent["temperature"] == 3.0
    with pytest.raises(KeyError, match="none of \\['bc'\\] has a preset"):
        bench.make_jobs(["bc"], ["x.npz"], [0], preset="hopper-medium-v2")
    per_dataset = ["hopper-medium-v2", "walker2d-medium-v2"]
    with pytest.raises(
        SettingsError, match="dtql: pretrain_steps .50000. must be below the run's steps .100."
    ):
        bench.make_jobs(["dtql"], ["h.npz"], [0], steps=100, preset=per_dataset[:1])
    jobs = bench.make_jobs(["dtql"], ["h.npz", "w.npz"], [0], steps=100, preset=per_dataset,
                           sets={"pretrain_steps": "10"})  # fmt: skip
    assert [bench.job_config(j).agent["lr"] for j in jobs] == [1e-4, 3e-4]


def test_the_bench_package_and_the_cli_do_not_import_each_other():
    env = {**os.environ, "PYTHONPATH": str(Path(diffrl.__file__).parents[1])}  # tree under test
    code = (
        "import importlib, sys; importlib.import_module(sys.argv[1]); "
        "print(sys.argv[2] in sys.modules)"
    )
    for module, other in (("diffrl.bench", "diffrl.cli"), ("diffrl.cli", "diffrl.bench")):
        proc = subprocess.run([sys.executable, "-c", code, module, other], capture_output=True,
                              text=True, env=env, check=True)  # fmt: skip
        assert proc.stdout.strip() == "False", f"import {module} imported {other}"
