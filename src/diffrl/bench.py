"""`diffrl bench`: many (algorithm, dataset, seed) runs on Ray, aggregated into honest tables.

Every job is an ordinary run directory, `OUT/runs/<dataset>/<algo>/seed<k>/`, trained by the
normal loop (`train.new_run` / `train.execute`), so each can be inspected, evaluated and resumed
on its own. Re-running the same command skips finished jobs (their summary.json exists), resumes
interrupted ones from their last checkpoint and retries failed ones. Jobs run as Ray tasks: a
local Ray instance by default, an existing cluster with `--address`.

After the jobs, `OUT/results.csv` (one row per job), `OUT/results.md` (normalised score mean ± std
over seeds for the final, best-during-training and offline-selected evaluations, side by side,
with the exact command on top and failed jobs listed with their error) and one learning-curve PNG
per dataset (`OUT/curves-<dataset>.png`) are written.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from diffrl.fileio import write_text_atomic
from diffrl.names import dataset_slug

RULES = ("final", "best", "offline_selected")


@dataclasses.dataclass(frozen=True)
class Job:
    """One (algorithm, dataset, seed) run with the sweep's shared settings."""

    algo: str
    dataset: str
    seed: int
    steps: int | None
    eval_every: int | None
    eval_episodes: int | None
    mode: str | None
    agent: tuple[tuple[str, Any], ...] = ()  # this algorithm's --set overrides
    preset: str | None = None  # a preset name, used by the algorithms that have it

    @property
    def slug(self) -> str:
        return dataset_slug(self.dataset)

    def run_dir(self, out: Path) -> Path:
        return Path(out) / "runs" / self.slug / self.algo / f"seed{self.seed}"


def split_overrides(sets: dict[str, Any], algos: list[str]) -> dict[str, dict[str, Any]]:
    """`--set key=v` applies to every algorithm whose Config has `key`; `--set algo.key=v` to
    `algo` only. A key no algorithm of the sweep knows is an error."""
    from diffrl.agents import get_agent

    fields = {a: {f.name for f in dataclasses.fields(get_agent(a).Config)} for a in algos}
    per_algo: dict[str, dict[str, Any]] = {a: {} for a in algos}
    for key, value in sets.items():
        algo, _, name = key.rpartition(".")
        targets = [algo] if algo else [a for a in algos if name in fields[a]]
        if algo and algo not in algos:
            raise KeyError(f"--set {key}: {algo!r} is not one of the sweep's algorithms {algos}")
        if not targets or any(name not in fields[a] for a in targets):
            raise KeyError(
                f"--set {key}: no algorithm of {targets or algos} has a setting {name!r}"
            )
        for a in targets:
            per_algo[a][name] = value
    return per_algo


def make_jobs(
    algos: list[str],
    datasets: list[str],
    seeds: list[int],
    steps: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    mode: str | None = None,
    sets: dict[str, Any] | None = None,
    preset: str | list[str | None] | None = None,
) -> list[Job]:
    """One job per (dataset, algorithm, seed). `preset` (e.g. `hopper-medium-v2` for a Hopper
    dataset without a preset of its own; a list gives one per dataset) applies to the
    algorithms that have it."""
    from diffrl.presets import preset_names

    per_algo = split_overrides(sets or {}, algos)
    presets = preset if isinstance(preset, list) else [preset] * len(datasets)
    if len(presets) != len(datasets):
        raise KeyError(f"--preset: {len(presets)} names for {len(datasets)} datasets")
    for name in presets:
        if name is not None and not any(name in preset_names(a) for a in algos):
            raise KeyError(f"--preset {name}: none of {algos} has a preset of that name")
    return [
        Job(
            a,
            d,
            s,
            steps,
            eval_every,
            eval_episodes,
            mode,
            tuple(sorted(per_algo[a].items())),
            p if p in preset_names(a) else None,
        )  # fmt: skip
        for d, p in zip(datasets, presets, strict=True)
        for a in algos
        for s in seeds
    ]


# -- one job (runs in a Ray worker, or in-process) ----------------------------------------------
def job_config(job: Job):
    """The RunConfig of a job: the algorithm's preset for the dataset (if any) under the sweep's
    explicit settings, as `diffrl train` resolves it."""
    from diffrl import train
    from diffrl.presets import preset_name_for_dataset

    given = {
        k: v
        for k, v in {
            "steps": job.steps,
            "eval_every": job.eval_every,
            "eval_episodes": job.eval_episodes,
            "mode": job.mode,
        }.items()
        if v is not None
    }
    agent = dict(job.agent)
    base = train.RunConfig(
        algo=job.algo, dataset=job.dataset, seed=job.seed, preset=job.preset, agent=agent, **given
    )
    preset = preset_name_for_dataset(job.dataset)
    return train.resolve_config(preset, base, explicit=set(given) | set(agent))


def run_job(job: Job, out: str) -> dict[str, Any]:
    """Train one job to the end (new, resumed or already finished); never raises."""
    from diffrl import train

    run_dir = job.run_dir(Path(out))
    t0 = time.time()
    try:
        if (run_dir / "summary.json").exists():
            return {"status": "skipped", "run_dir": str(run_dir)}
        if (run_dir / "config.json").exists():
            run, status = train.open_run(run_dir), "resumed"
        else:
            run, status = train.new_run(job_config(job), run_dir), "trained"
        train.execute(run, progress=False)
        return {"status": status, "run_dir": str(run_dir), "seconds": round(time.time() - t0, 1)}
    except Exception as exc:  # noqa: BLE001 — a failed job is reported, not fatal to the sweep
        return {
            "status": "failed",
            "run_dir": str(run_dir),
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
            "seconds": round(time.time() - t0, 1),
        }


def run_jobs(
    jobs: list[Job], out: Path, address: str | None, cpus_per_job: float, log=print
) -> list[dict]:
    """Run the jobs as Ray tasks; returns one status record per job in job order."""
    import ray

    env = {"env_vars": _thread_limits(cpus_per_job)}
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=env,
            # a local instance stays on the loopback interface (no outside address needed)
            **({} if address else {"num_cpus": os.cpu_count(), "_node_ip_address": "127.0.0.1"}),
        )
    remote = ray.remote(num_cpus=cpus_per_job, max_retries=0)(run_job)
    pending = {remote.remote(job, str(out)): i for i, job in enumerate(jobs)}
    results: list[dict | None] = [None] * len(jobs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 — e.g. a worker killed for memory
                results[i] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            log(_job_line(jobs[i], results[i], len(jobs) - len(pending), len(jobs)))
    return [r for r in results if r is not None]


def _thread_limits(cpus_per_job: float) -> dict[str, str]:
    """Keep one job's math libraries to its share of CPUs (XLA's CPU backend and BLAS)."""
    n = str(max(1, int(cpus_per_job)))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def _job_line(job: Job, result: dict, k: int, n: int) -> str:
    extra = f" — {result['error']}" if result["status"] == "failed" else ""
    secs = f" ({result['seconds']} s)" if "seconds" in result else ""
    return f"[{k}/{n}] {job.algo} {job.dataset} seed {job.seed}: {result['status']}{secs}{extra}"


# -- aggregation --------------------------------------------------------------------------------
def collect(jobs: list[Job], out: Path, statuses: list[dict]) -> list[dict[str, Any]]:
    """One row per job: the three scores from its summary.json, or its error."""
    from diffrl.runlog import read_records

    rows = []
    for job, status in zip(jobs, statuses, strict=True):
        row: dict[str, Any] = {"algo": job.algo, "dataset": job.dataset, "seed": job.seed}
        summary_path = job.run_dir(out) / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            row["steps"] = summary["steps"]
            row["preset"] = summary.get("preset")
            row["mode"] = summary.get("mode")
            for rule in RULES:
                entry = summary.get(rule) or {}
                row[f"{rule}_score"] = entry.get("score")
                row[f"{rule}_step"] = entry.get("step")
            row.update(run_cost(read_records(job.run_dir(out) / "metrics.jsonl")))
            row["status"] = "ok"
        else:
            row["status"] = "failed"
            row["error"] = status.get("error", "no summary.json")
        row["run_dir"] = str(job.run_dir(out).relative_to(out))
        rows.append(row)
    return rows


def run_cost(records: list[dict]) -> dict[str, float]:
    """Seconds spent in gradient steps and in evaluations, from a run's metrics.jsonl.

    Each train record carries the rate of the chunk that ended at its step, so the chunk's time is
    (steps since the previous record) / rate; compilation falls in the first chunk. Start-up
    (loading data, building the evaluator) is not counted. A resumed run's log keeps one record
    per step, so interrupted work is not counted twice."""
    seconds, previous = 0.0, 0
    for r in records:
        if r["kind"] == "train" and r.get("steps_per_s"):
            seconds += (r["step"] - previous) / r["steps_per_s"]
            previous = r["step"]
    evals = sum(r.get("eval_seconds") or 0.0 for r in records if r["kind"] == "eval")
    return {"train_seconds": round(seconds, 1), "eval_seconds": round(evals, 1)}


CSV_FIELDS = (
    "algo", "dataset", "seed", "status", "steps", "preset", "mode",
    *(f"{r}_{k}" for r in RULES for k in ("score", "step")),
    "train_seconds", "eval_seconds", "run_dir", "error",
)  # fmt: skip


def write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    arr = np.asarray(values, np.float64)
    return f"{arr.mean():.4g} ± {arr.std():.2g}"


def _mean(values: list[float]) -> str:
    return f"{np.mean(values):.0f}" if values else "–"


def results_markdown(rows: list[dict], command: str, algos: list[str], datasets: list[str]) -> str:
    """Per dataset and algorithm: mean ± std over seeds (population std) for each rule."""
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        "Scores are D4RL-normalised returns (0 = random policy, 100 = expert; for a bandit "
        "dataset the mean true reward of the sampled actions) of the evaluations "
        "in each run's summary.json: `final` = the last evaluation, `best` = the best evaluation "
        "during training (optimistic: it looks at test returns), `offline` = the evaluation "
        "picked by the offline selection rule (no test returns used). mean ± std over the seeds "
        "that finished (n). `train s` / `eval s`: mean seconds per run in gradient steps / in "
        "evaluations (from metrics.jsonl; jobs that shared the machine slow each other).",
        "",
        "| dataset | algorithm | final | best | offline-selected | n | steps | train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in datasets:
        for a in algos:
            ok = [r for r in rows if r["dataset"] == d and r["algo"] == a and r["status"] == "ok"]
            cells = [
                _mean_std([r[f"{rule}_score"] for r in ok if r[f"{rule}_score"] is not None])
                for rule in RULES
            ]
            steps = sorted({r["steps"] for r in ok})
            cost = [_mean([r[k] for r in ok]) for k in ("train_seconds", "eval_seconds")]
            lines.append(
                f"| {dataset_slug(d)} | {a} | {' | '.join(cells)} | {len(ok)} | "
                f"{', '.join(map(str, steps)) or '–'} | {' | '.join(cost)} |"
            )
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- {r['algo']} {r['dataset']} seed {r['seed']}: {r['error']}" for r in failed]
    return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict], out: Path, datasets: list[str], algos: list[str]) -> list[Path]:
    """curves-<dataset>.png: evaluation score against step, mean ± std over seeds per algorithm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from diffrl.runlog import read_records

    paths = []
    for d in datasets:
        fig = Figure(figsize=(6.0, 4.0))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for a in algos:
            curves = [
                _eval_curve(read_records(out / r["run_dir"] / "metrics.jsonl"))
                for r in rows
                if r["dataset"] == d and r["algo"] == a and r["status"] == "ok"
            ]
            if not curves:
                continue
            steps, mean, std = _stack(curves)
            ax.plot(steps, mean, label=f"{a} (n={len(curves)})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_title(dataset_slug(d), fontsize=9)
        ax.set_xlabel("gradient step")
        ax.set_ylabel("normalised score")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"curves-{dataset_slug(d)}.png"
        fig.savefig(path, format="png", dpi=100)
        paths.append(path)
    return paths


def _eval_curve(records: list[dict]) -> dict[int, float]:
    return {r["step"]: r["score"] for r in records if r["kind"] == "eval" and "score" in r}


def _stack(curves: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over runs at the steps every run evaluated."""
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    values = np.asarray([[c[s] for s in steps] for c in curves], np.float64)
    return np.asarray(steps), values.mean(axis=0), values.std(axis=0)


def bench(
    jobs: list[Job],
    out: Path,
    algos: list[str],
    datasets: list[str],
    address: str | None = None,
    cpus_per_job: float = 1.0,
    command: str | None = None,
    log=print,
) -> list[dict]:
    """Run (or skip) every job, then write results.csv, results.md and the curves."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    statuses = run_jobs(jobs, out, address, cpus_per_job, log)
    rows = collect(jobs, out, statuses)
    command = command or " ".join(shlex.quote(a) for a in ["diffrl", *sys.argv[1:]])
    write_csv(rows, out / "results.csv")
    write_text_atomic(out / "results.md", results_markdown(rows, command, algos, datasets))
    plot_curves(rows, out, datasets, algos)
    return rows
