"""The tables and figures of `diffrl bench`: one row per job from its run directory, results.csv,
results.md (mean ± std over seeds per rule, with costs and failed jobs) and learning curves."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from diffrl.bench.jobs import Job
from diffrl.fileio import write_text_atomic
from diffrl.names import SELECTION_RULES, dataset_slug

RULES = SELECTION_RULES
NOT_RUN = "not run"  # the status of every job of a `--report`: nothing was trained this time
COLUMNS = ("dataset", "algorithm", *(r.replace("_", "-") for r in RULES), "n", "steps",
           "train s", "eval s")  # fmt: skip


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
        elif status.get("status") == NOT_RUN:
            row["status"] = "unfinished"
            row["reached_step"] = _reached_step(job.run_dir(out) / "metrics.jsonl")
        else:
            row["status"] = "failed"
            row["error"] = status.get("error", "no summary.json")
        row["run_dir"] = str(job.run_dir(out).relative_to(out))
        row["node"] = status.get("node", "")  # the Ray node that ran (or skipped) it this time
        rows.append(row)
    return rows


def _reached_step(metrics: Path) -> int | None:
    """The last step an unfinished run logged (None before its first record). A sweep may be
    appending to the file right now, so a half-written last line is skipped."""
    step = None
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                step = json.loads(line)["step"]
            except (ValueError, KeyError, TypeError):
                continue
    return step


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
    "train_seconds", "eval_seconds", "run_dir", "node", "reached_step", "error",
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
        "dataset the mean true reward of the sampled actions; for an OGBench dataset the "
        "success rate in percent) of the evaluations "
        "in each run's summary.json: `final` = the last evaluation, `best` = the best evaluation "
        "during training (optimistic: it looks at test returns), `offline` = the evaluation "
        "picked by the offline selection rule (no test returns used), `early-stopped` = "
        "the official Diffusion-QL protocol (docs/bench.md). mean ± std over the seeds "
        "that finished (n). `train s` / `eval s`: mean seconds per run in gradient steps / in "
        "evaluations (from metrics.jsonl; jobs that shared the machine slow each other).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---" * len(COLUMNS) + "|",
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
    lines += _per_seed_table(rows, algos, datasets) + _jobs_without_results(rows)
    return "\n".join(lines) + "\n"


def _jobs_without_results(rows: list[dict]) -> list[str]:
    """The failed jobs with their errors, then the unfinished ones with how far they got."""
    lines = []
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- {r['algo']} {r['dataset']} seed {r['seed']}: {r['error']}" for r in failed]
    unfinished = [r for r in rows if r["status"] == "unfinished"]
    if unfinished:
        lines += ["", f"## Not finished ({len(unfinished)} of {len(rows)} jobs)", ""]
        lines += [f"- {r['algo']} {r['dataset']} seed {r['seed']}: {_progress(r)}"
                  for r in unfinished]  # fmt: skip
    return lines


def _per_seed_table(rows: list[dict], algos: list[str], datasets: list[str]) -> list[str]:
    """Each rule's score per seed, in seed order, for every cell with a finished seed."""
    lines = ["", "## Per seed", "",
             "| dataset | algorithm | seeds | " + " | ".join(COLUMNS[2:6]) + " |",
             "|---" * 7 + "|"]  # fmt: skip
    for d in datasets:
        for a in algos:
            ok = sorted((r for r in rows if r["dataset"] == d and r["algo"] == a
                         and r["status"] == "ok"), key=lambda r: r["seed"])  # fmt: skip
            if ok:
                cells = [", ".join(_score(r[f"{rule}_score"]) for r in ok) for rule in RULES]
                seeds = ", ".join(str(r["seed"]) for r in ok)
                lines.append(f"| {dataset_slug(d)} | {a} | {seeds} | {' | '.join(cells)} |")
    return lines


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _progress(row: dict) -> str:
    step = row.get("reached_step")
    return "not started" if step is None else f"interrupted or running, at step {step}"


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
        ax.set_ylabel("score (normalised return or success %)")
        if ax.lines:
            ax.legend(fontsize=7)
        else:  # every job of this dataset failed or has not finished yet
            ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
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
