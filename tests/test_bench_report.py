"""`diffrl bench`, the report side: rows from the run directories, results.csv, results.md
and the learning curves; the cost of a run from its metrics.jsonl."""

from __future__ import annotations

import csv

import pytest
from runhelpers import assert_png_has_content

from diffrl import bench
from diffrl.runlog import read_records


def test_a_failed_job_is_a_row_with_its_error(finished):
    out, jobs, statuses = finished
    rows = bench.collect(jobs, out, statuses)
    assert rows[2]["status"] == "failed" and "missing.npz" in rows[2]["error"]


def test_tables_and_curves(finished):
    out, jobs, statuses = finished
    rows = bench.collect(jobs, out, statuses)
    scores = [r["final_score"] for r in rows[:2]]
    assert all(isinstance(s, float) for s in scores)
    text = bench.results_markdown(rows, "diffrl bench ...", ["dtql"], ["bandit:corners"])
    assert "Command: `diffrl bench ...`" in text
    main_part, per_seed = text.split("## Per seed")
    table = [line for line in main_part.splitlines() if line.startswith("|")]
    assert table[0].startswith("| dataset | algorithm | final | best | offline-selected |")
    assert len({line.count("|") for line in table}) == 1  # every row has the header's cells
    mean, std = sum(scores) / 2, abs(scores[0] - scores[1]) / 2
    assert f"| corners | dtql | {mean:.4g} ± {std:.2g} |" in text
    seed_rows = [line for line in per_seed.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in seed_rows}) == 1 and len(seed_rows) == 3
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
    assert path.name == "curves-corners.png"
    # 6 x 4 inches at 100 dpi, with two curves, their bands, axes and a legend drawn on it
    assert assert_png_has_content(path, 600, 400, min_colours=20, min_ink=0.03) == (600, 400)


def test_run_cost_adds_chunk_times_and_evaluations():
    records = [
        {"kind": "train", "step": 100, "steps_per_s": 50.0},  # 2 s
        {"kind": "eval", "step": 100, "eval_seconds": 1.5},
        {"kind": "train", "step": 300, "steps_per_s": 100.0},  # 2 s
        {"kind": "eval", "step": 300, "eval_seconds": 0.5},
    ]
    assert bench.run_cost(records) == {"train_seconds": 4.0, "eval_seconds": 2.0}


def test_report_only_tables_the_finished_jobs_and_lists_the_rest(finished, tmp_path, monkeypatch,
                                                                 capsys):  # fmt: skip
    import shutil

    from diffrl.cli import main

    src, jobs, _ = finished
    out = tmp_path / "sweep"
    shutil.copytree(src / "runs", out / "runs")
    # seed 3 was stopped mid-run (a sweep may be writing its last line right now); seed 2 never ran
    interrupted = out / "runs" / "corners" / "dtql" / "seed3"
    interrupted.mkdir(parents=True)
    (interrupted / "metrics.jsonl").write_text('{"kind": "train", "step": 20}\n{"kind": "tr')

    def no_training(*args, **kwargs):
        raise AssertionError("--report must not run any job")

    monkeypatch.setattr(bench, "run_jobs", no_training)
    args = ["bench", "--algos", "dtql", "--datasets", "bandit:corners", "--seeds", "0,1,2,3",
            "--report", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "2 of 4 job(s) finished, 0 failed" in capsys.readouterr().out
    text = (out / "results.md").read_text()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "unfinished", "unfinished"]
    finals = [float(r["final_score"]) for r in rows[:2]]
    mean, std = sum(finals) / 2, abs(finals[0] - finals[1]) / 2
    assert f"| corners | dtql | {mean:.4g} ± {std:.2g} |" in text  # n = 2: the finished seeds
    assert f"| corners | dtql | 0, 1 | {finals[0]:.4g}, {finals[1]:.4g} |" in text  # per seed
    assert "## Not finished (2 of 4 jobs)" in text and "## Failed jobs" not in text
    assert "dtql bandit:corners seed 2: not started" in text
    assert "dtql bandit:corners seed 3: interrupted or running, at step 20" in text
    # a mistyped --out is refused instead of reporting an empty sweep
    with pytest.raises(SystemExit, match="does not exist"):
        main([*args[:-1], str(tmp_path / "typo")])
    with pytest.raises(bench.NoSweepError):  # the library refuses it too, making no folder
        bench.bench([], tmp_path / "typo2", [], [], report_only=True)
    assert not (tmp_path / "typo2").exists()
