"""`diffrl bench`: many (algorithm, dataset, seed) runs on Ray, aggregated into honest tables.

Every job is an ordinary run directory, `OUT/runs/<dataset>/<algo>/seed<k>/`, trained by the
normal loop (`launch.start` / `run.execute`), so each can be inspected, evaluated and resumed
on its own. Re-running the same command skips finished jobs (their summary.json exists), resumes
interrupted ones from their last checkpoint and retries failed ones. Jobs run as Ray tasks: a
local Ray instance by default, an existing cluster with `--address`.

After the jobs, `OUT/results.csv` (one row per job), `OUT/results.md` (normalised score mean ± std
over seeds for the final, best-during-training and offline-selected evaluations, side by side,
with the exact command on top and failed jobs listed with their error) and one learning-curve PNG
per dataset (`OUT/curves-<dataset>.png`) are written. `--report` writes them from the jobs
that have finished so far, training nothing.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffrl.bench.jobs import Job, job_config, make_jobs, run_job, run_jobs, split_overrides
from diffrl.bench.report import (
    CSV_FIELDS,
    NOT_RUN,
    RULES,
    collect,
    plot_curves,
    results_markdown,
    run_cost,
    write_csv,
)
from diffrl.fileio import write_text_atomic
from diffrl.names import dataset_slug

__all__ = [
    "CSV_FIELDS",
    "RULES",
    "Job",
    "NoSweepError",
    "bench",
    "collect",
    "dataset_slug",
    "job_config",
    "make_jobs",
    "plot_curves",
    "results_markdown",
    "run_cost",
    "run_job",
    "run_jobs",
    "split_overrides",
    "write_csv",
]


class NoSweepError(FileNotFoundError):
    """`--report` on an `out` that holds no sweep (no `runs/`): most likely a mistyped path."""


def bench(
    jobs: list[Job],
    out: Path,
    algos: list[str],
    datasets: list[str],
    address: str | None = None,
    cpus_per_job: float = 1.0,
    command: str | None = None,
    log: Callable[[str], Any] = print,
    vmap_seeds: bool = False,
    report_only: bool = False,
) -> list[dict]:
    """Run (or skip) every job, then write results.csv, results.md and the curves.

    With `report_only`, train nothing and start no Ray: the tables cover the jobs that have
    finished and list the others as not finished (safe beside a sweep that is running); an
    `out` without run directories is refused (NoSweepError), as a mistyped path."""
    out = Path(out)
    if report_only:
        if not (out / "runs").is_dir():
            raise NoSweepError(f"{out / 'runs'} does not exist; expected the --out of a sweep "
                               "that has run")  # fmt: skip
        statuses = [{"status": NOT_RUN} for _ in jobs]
    else:
        out.mkdir(parents=True, exist_ok=True)
        statuses = run_jobs(jobs, out, address, cpus_per_job, log, vmap_seeds)
    rows = collect(jobs, out, statuses)
    command = command or " ".join(shlex.quote(a) for a in ["diffrl", *sys.argv[1:]])
    write_csv(rows, out / "results.csv")
    write_text_atomic(out / "results.md", results_markdown(rows, command, algos, datasets))
    plot_curves(rows, out, datasets, algos)
    return rows
