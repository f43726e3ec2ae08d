"""The Ray side of `diffrl bench`: one job per (algorithm, dataset, seed), each an ordinary run
directory `OUT/runs/<dataset>/<algo>/seed<k>/` trained by the normal loop; finished jobs are
skipped, interrupted ones resumed, failed ones reported (never raised)."""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffrl.names import dataset_slug

if TYPE_CHECKING:
    from diffrl.run import RunConfig


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
    """`--set key=v` applies to every algorithm whose Config has `key` (a run setting, e.g. the
    action choice, to all); `--set algo.key=v` to `algo` only. A key no algorithm of the sweep
    knows is an error."""
    from diffrl.agents import get_agent
    from diffrl.run.settings import RUN_KEYS

    fields = {a: {*RUN_KEYS, *(f.name for f in dataclasses.fields(get_agent(a).Config))}
              for a in algos}  # fmt: skip
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


def dataset_presets(
    preset: str | list[str | None] | None, datasets: list[str], algos: list[str]
) -> list[str | None]:
    """The preset name of each dataset (one name for all, or a list with one per dataset); a
    name none of the sweep's algorithms has is an error."""
    from diffrl.presets import preset_names

    presets = preset if isinstance(preset, list) else [preset] * len(datasets)
    if len(presets) != len(datasets):
        raise KeyError(f"--preset: {len(presets)} names for {len(datasets)} datasets")
    for name in presets:
        if name is not None and not any(name in preset_names(a) for a in algos):
            raise KeyError(f"--preset {name}: none of {algos} has a preset of that name")
    return presets


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
    presets = dataset_presets(preset, datasets, algos)
    jobs = [
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
    for job in {(j.algo, j.dataset): j for j in jobs}.values():
        job_config(job)  # every setting checked before a run directory is made
    return jobs


# -- one job (runs in a Ray worker, or in-process) ----------------------------------------------
def job_config(job: Job) -> RunConfig:
    """The RunConfig of a job: the algorithm's preset for the dataset (if any) under the sweep's
    explicit settings, as `diffrl train` resolves it (every setting checked)."""
    from diffrl.run import resolve

    given = {
        "steps": job.steps,
        "eval_every": job.eval_every,
        "eval_episodes": job.eval_episodes,
        "mode": job.mode,
        "preset": job.preset,
    }
    given = {k: v for k, v in given.items() if v is not None}
    values = {"algo": job.algo, "dataset": job.dataset, "seed": job.seed, **given,
              **dict(job.agent)}  # fmt: skip
    return resolve(values, f"bench job {job.algo} on {job.dataset}")


def run_job(job: Job, out: str) -> dict[str, Any]:
    """Train one job to the end (new, resumed or already finished); never raises."""
    from diffrl import launch
    from diffrl.run import execute

    run_dir = job.run_dir(Path(out))
    t0 = time.time()
    try:
        if (run_dir / "summary.json").exists():
            return {"status": "skipped", "run_dir": str(run_dir)}
        if (run_dir / "config.json").exists():
            run, status = launch.resume(run_dir), "resumed"
        else:
            run, status = launch.start(job_config(job), run_dir), "trained"
        execute(run, progress=False)
        return {"status": status, "run_dir": str(run_dir), "seconds": round(time.time() - t0, 1)}
    except Exception as exc:  # noqa: BLE001 — a failed job is reported, not fatal to the sweep
        return {
            "status": "failed",
            "run_dir": str(run_dir),
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
            "seconds": round(time.time() - t0, 1),
        }


def run_group(jobs: list[Job], out: str) -> list[dict[str, Any]]:
    """Train jobs that differ only in their seed as one vmapped program (run.many); one status
    per job, in order. Finished jobs are skipped; never raises."""
    from diffrl import launch
    from diffrl.run import lock
    from diffrl.run.many import execute_many

    t0, runs, statuses = time.time(), [], []
    try:
        for job in jobs:
            run_dir = job.run_dir(Path(out))
            if (run_dir / "summary.json").exists():
                statuses.append({"status": "skipped", "run_dir": str(run_dir)})
            elif (run_dir / "config.json").exists():
                runs.append(launch.resume(run_dir))
                statuses.append({"status": "resumed", "run_dir": str(run_dir)})
            else:
                runs.append(launch.start(job_config(job), run_dir))
                statuses.append({"status": "trained", "run_dir": str(run_dir)})
        if runs:
            execute_many(runs, progress=False)
    except Exception as exc:  # noqa: BLE001 — the group's jobs are reported failed, not fatal
        for r in runs:
            lock.release(r.out)
        failed = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=8)}  # fmt: skip
        statuses = [s if s["status"] == "skipped" else {**s, **failed} for s in statuses]
        statuses += [
            {**failed, "run_dir": str(j.run_dir(Path(out)))} for j in jobs[len(statuses) :]
        ]
    seconds = round(time.time() - t0, 1)
    return [s if s["status"] == "skipped" else {**s, "seconds": seconds} for s in statuses]


def seed_groups(jobs: list[Job]) -> list[list[int]]:
    """Indices of the jobs that share everything but the seed, in job order."""
    groups: dict[Job, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(dataclasses.replace(job, seed=0), []).append(i)
    return list(groups.values())


def run_jobs(
    jobs: list[Job],
    out: Path,
    address: str | None,
    cpus_per_job: float,
    log: Callable[[str], Any] = print,
    vmap_seeds: bool = False,
) -> list[dict]:
    """Run the jobs as Ray tasks (with `vmap_seeds`, one task per group of seeds); returns one
    status record per job in job order."""
    import ray

    _ensure_ray(address, cpus_per_job)
    groups = seed_groups(jobs) if vmap_seeds else [[i] for i in range(len(jobs))]
    task = ray.remote(num_cpus=cpus_per_job, max_retries=0)(_run_indices)
    pending = {task.remote([jobs[i] for i in g], str(out), vmap_seeds): g for g in groups}
    results: list[dict | None] = [None] * len(jobs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            group = pending.pop(ref)
            try:
                statuses = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 — e.g. a worker killed for memory
                failed = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                statuses = [failed] * len(group)
            for i, status in zip(group, statuses, strict=True):
                results[i] = status
                finished = sum(r is not None for r in results)
                log(_job_line(jobs[i], status, finished, len(jobs)))
    return [r for r in results if r is not None]


def _ensure_ray(address: str | None, cpus_per_job: float) -> None:
    """Connect to the cluster at `address`, or start a local instance, unless already done."""
    import ray

    if ray.is_initialized():
        return
    ray.init(
        # "local": a new instance even where `ray start` left one running on this machine (with
        # None, Ray would join that one, and refuse the num_cpus below)
        address=address or "local",
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": _thread_limits(cpus_per_job)},
        # a local instance stays on the loopback interface (no outside address needed)
        **({} if address else {"num_cpus": os.cpu_count(), "_node_ip_address": "127.0.0.1"}),
    )


def _run_indices(jobs: list[Job], out: str, vmap_seeds: bool) -> list[dict[str, Any]]:
    """The Ray task: the jobs' statuses, each naming the node that ran them."""
    import ray

    statuses = run_group(jobs, out) if vmap_seeds else [run_job(jobs[0], out)]
    node = ray.get_runtime_context().get_node_id()
    return [{**s, "node": node} for s in statuses]


def _thread_limits(cpus_per_job: float) -> dict[str, str]:
    """Keep one job's math libraries to its share of CPUs (XLA's CPU backend and BLAS)."""
    n = str(max(1, int(cpus_per_job)))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def _job_line(job: Job, result: dict, k: int, n: int) -> str:
    extra = f" — {result['error']}" if result["status"] == "failed" else ""
    secs = f" ({result['seconds']} s)" if "seconds" in result else ""
    node = f" on node {result['node'][:8]}" if result.get("node") else ""
    status = f"{result['status']}{secs}{node}{extra}"
    return f"[{k}/{n}] {job.algo} {job.dataset} seed {job.seed}: {status}"
