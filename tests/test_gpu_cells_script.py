"""benchmarks/gpu_cells.py: a cell's seeds trained as one vmapped program land in `diffrl bench`'s
layout, so that a sweep skips them and reports them; nothing at the destination is overwritten."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
from runhelpers import BENCH_TINY

from diffrl import bench

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_cells.py"
TINY_SETS = [f"dtql.{k}={v}" for k, v in BENCH_TINY.items()]


@pytest.fixture(scope="module")
def gpu_cells():
    return runpy.run_path(str(SCRIPT))


def cell_argv(work: Path, dest: Path, seeds: str = "0,1") -> list[str]:
    argv = ["--cell", "dtql,bandit:corners", "--seeds", seeds, "--steps", "40"]
    argv += ["--eval-every", "20", "--work", str(work), "--copy-to", str(dest)]
    return argv + [x for s in TINY_SETS for x in ("--set", s)]


def json_lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_cells_land_where_a_sweep_skips_and_reports_them(gpu_cells, tmp_path, capsys):
    work, dest = tmp_path / "work", tmp_path / "sweep"
    assert gpu_cells["main"](cell_argv(work, dest)) == 0
    (line,) = json_lines(capsys)
    assert line["status"] == {"seed0": "trained", "seed1": "trained"} and line["errors"] == []
    assert line["copied"] == ["seed0", "seed1"]
    jobs = bench.make_jobs(["dtql"], ["bandit:corners"], [0, 1], steps=40, eval_every=20,
                           sets=BENCH_TINY)  # fmt: skip
    for job in jobs:  # the sweep's own jobs, at the paths the script wrote
        copied = job.run_dir(dest)
        assert sorted(p.name for p in copied.iterdir()) == sorted(gpu_cells["BENCH_FILES"])
        assert bench.run_job(job, str(dest))["status"] == "skipped"
    rows = bench.collect(jobs, dest, [{"status": "skipped"}] * 2)
    finals = [json.loads((j.run_dir(work) / "summary.json").read_text())["final"] for j in jobs]
    assert [r["final_score"] for r in rows] == [f["score"] for f in finals]
    assert list(line["final_score"].values()) == [f["score"] for f in finals]


def test_finished_seeds_are_skipped_and_copies_never_overwrite(gpu_cells, tmp_path, capsys):
    work, dest = tmp_path / "work", tmp_path / "sweep"
    gpu_cells["main"](cell_argv(work, dest, seeds="0"))
    capsys.readouterr()
    summary = work / "runs" / "corners" / "dtql" / "seed0" / "summary.json"
    before = summary.read_bytes()
    assert gpu_cells["main"](cell_argv(work, tmp_path / "elsewhere")) == 0
    (line,) = json_lines(capsys)
    assert line["status"] == {"seed0": "skipped", "seed1": "trained"}
    assert line["copied"] == ["seed0", "seed1"]
    assert summary.read_bytes() == before  # the finished seed was not trained again
    with pytest.raises(SystemExit, match="not overwriting .*seed0/summary.json"):
        gpu_cells["main"](cell_argv(work, dest))


def test_bad_cells_and_settings_are_refused_before_training(gpu_cells, tmp_path):
    work = tmp_path / "w"
    with pytest.raises(SystemExit, match="expected ALGO,DATASET"):
        gpu_cells["main"](["--cell", "dtql", "--work", str(work)])
    # the second cell's setting is checked before the first cell trains
    argv = ["--cell", "dtql,bandit:corners", "--cell", "dql,bandit:corners", "--work", str(work)]
    with pytest.raises(KeyError, match="no_such_setting"):
        gpu_cells["main"]([*argv, "--set", "dql.no_such_setting=1"])
    assert not work.exists()


def test_an_algorithm_prefixed_setting_goes_to_that_algorithm_only(gpu_cells, tmp_path):
    argv = ["--cell", "dtql,bandit:corners", "--cell", "dql,bandit:corners", "--seeds", "0"]
    argv += ["--work", str(tmp_path / "w"), "--set", "dtql.pretrain_steps=7"]
    dtql_jobs, dql_jobs = gpu_cells["all_cell_jobs"](gpu_cells["parse_args"](argv))
    assert dict(dtql_jobs[0].agent) == {"pretrain_steps": "7"} and dql_jobs[0].agent == ()
