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


def cell_argv(work: Path, dest: Path) -> list[str]:
    argv = ["--cell", "dtql,bandit:corners", "--seeds", "0,1", "--steps", "40"]
    argv += ["--eval-every", "20", "--work", str(work), "--copy-to", str(dest)]
    return argv + [x for s in TINY_SETS for x in ("--set", s)]


def test_cells_land_where_a_sweep_skips_and_reports_them(gpu_cells, tmp_path, capsys):
    work, dest = tmp_path / "work", tmp_path / "sweep"
    assert gpu_cells["main"](cell_argv(work, dest)) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["copied"] == ["seed0", "seed1"] and line["skipped"] is False
    assert line["train_rc"] == 0
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


def test_a_finished_cell_is_skipped_and_copies_never_overwrite(gpu_cells, tmp_path, capsys):
    work, dest = tmp_path / "work", tmp_path / "sweep"
    gpu_cells["main"](cell_argv(work, dest))
    capsys.readouterr()
    summary = work / "runs" / "corners" / "dtql" / "seed0" / "summary.json"
    before = summary.read_bytes()
    assert gpu_cells["main"](cell_argv(work, tmp_path / "elsewhere")) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["skipped"] is True and line["copied"] == ["seed0", "seed1"]
    assert summary.read_bytes() == before  # the finished cell was not trained again
    with pytest.raises(SystemExit, match="not overwriting .*seed0/summary.json"):
        gpu_cells["main"](cell_argv(work, dest))


def test_a_malformed_cell_is_refused_before_training(gpu_cells, tmp_path):
    with pytest.raises(SystemExit, match="expected ALGO,DATASET"):
        gpu_cells["main"](["--cell", "dtql", "--work", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()


def test_an_interrupted_cell_is_resumed_not_restarted(gpu_cells, tmp_path):
    args = gpu_cells["parse_args"](cell_argv(tmp_path / "work", tmp_path / "sweep"))
    cell = gpu_cells["parse_cell"]("dtql,bandit:corners")
    fresh = gpu_cells["train_argv"](*cell, args)
    assert fresh[:5] == ["train", "--algo", "dtql", "--dataset", "bandit:corners"]
    assert "pretrain_steps=20" in fresh and "--resume" not in fresh
    (tmp_path / "work" / "runs" / "corners" / "dtql").mkdir(parents=True)
    group = str(tmp_path / "work" / "runs" / "corners" / "dtql")
    assert gpu_cells["train_argv"](*cell, args) == ["train", "--resume", group, "--quiet"]
