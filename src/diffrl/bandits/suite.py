"""The bandit suite: train several algorithms on one 2-D bandit, draw the papers' figure grid and
write a metrics table (BANDITS.md; `diffrl bandit`).

Each (task, algorithm variant) is an ordinary run directory, `OUT/<task>/<label>/`, trained by the
normal loop with the small-budget bandit settings of `BANDIT_SETTINGS`. A finished run (its
`bandit.json` exists) is reused, an interrupted one resumes, so re-running a suite only trains
what is missing. After training, 1,000 actions at the constant state are drawn with the
algorithm's deployed action choice and scored with the spec's metrics; they are kept in
`samples.npy` so that figures can be redrawn without retraining.

Per task the suite writes `OUT/<task>/figure.png` (data and rewards, then one panel per
algorithm) and `OUT/<task>/metrics.md` / `metrics.json` (one record per algorithm variant). The
table and figure are derived from the runs: re-running merges new records into them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from diffrl import fileio, launch
from diffrl.acting import describe_choice
from diffrl.bandits.plots import plot_panels
from diffrl.bandits.tasks import ALIASES, TASK_NAMES, make_task, to_task_coords
from diffrl.run import RunConfig, RunError, execute, read_record, resolve, run_config

RECORD_KEYS = ("support_rate", "mode_shares", "best_mode_share", "mean_true_reward")

# Diffusion-QL: the settings of `diffrl demo` (docs/decisions.md, "The demo"), chosen to finish in
# a few minutes on 2 cores; the released toy script's N = 50, η = 2.5, 100 000 steps do not.
_DQL = {
    "n_steps": 10,  # N = 5 fits the four tight clusters too blurrily at this budget
    "hidden": 128,
    "eta": 0.1,  # η = 2.5 pushes samples off the data onto the critic's extrapolation here
    "actor_lr": 1e-3,
    "grad_norm": 0.0,
    "lr_decay": True,  # clean mode: per-step cosine to 0, which settles the final policy
    "selection": "softmax",  # the official evaluation: 50 candidates, one drawn from softmax(Q)
    "candidates": 50,
}
DEMO_STEPS = 12000


@dataclasses.dataclass(frozen=True)
class BanditSetting:
    """How one algorithm is trained and deployed on a bandit."""

    agent: dict[str, Any]  # agent Config overrides
    steps: int  # gradient steps
    batch_size: int = 100  # the released toy scripts' batch size
    per_task: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def agent_for(self, task: str) -> dict[str, Any]:
        return {**self.agent, **self.per_task.get(task, {})}


BANDIT_SETTINGS: dict[str, BanditSetting] = {
    "dql": BanditSetting(_DQL, DEMO_STEPS),
    # DiffCPS: benchmarks/bandit_diffcps.py's settings (docs/diffcps.md)
    "diffcps": BanditSetting(
        {
            **_DQL,
            "n_steps": 20,
            "eta": 1.0,
            "actor_lr": 3e-3,
            "lambda_lr": 3e-3,
            "lambda_init": 10.0,
            "lambda_min": 0.0,
            "kappa": 0.19,
        },
        12_000,
        per_task={"corners": {"kappa": 0.25}, "cross": {"kappa": 0.25}},
    ),
    # DTQL: the toy script's expectile 0.95 and α = 1; policy lr 1e-3 with a cosine to 0 for the
    # small budget (at 3e-4, 6 000 policy steps leave grid25-hard at best-mode share 0.36); the
    # one-step policy is deployed alone (docs/bandits.md)
    "dtql": BanditSetting(
        {
            "hidden": 128,
            "expectile": 0.95,
            "alpha": 1.0,
            "lr": 1e-3,
            "lr_decay": True,
            "pretrain_steps": 2000,
            "selection": "none",
            "policy_output": "sample",
        },
        12_000,
        batch_size=256,
        # r = ||a|| keeps growing past the swiss roll's arms: α = 1 lets the policy leave the data
        # for the critic's extrapolation (support 0.0); α = 10 holds it on the arms
        per_task={"swissroll-far": {"alpha": 10.0}, "swissroll-near": {"alpha": 10.0}},
    ),
    "diffbc": BanditSetting(
        {"n_steps": 50, "hidden": 128, "actor_lr": 1e-3, "lr_decay": True}, 12_000
    ),
    "bc": BanditSetting({"hidden": 128, "policy_output": "sample"}, 5000),
    "cvaebc": BanditSetting({}, 5000),
    "td3bc": BanditSetting({"hidden": 128}, 5000),
    # IQL's evaluation acts with the mean; on a bandit the figure shows the policy's samples
    "iql": BanditSetting({"hidden": 128, "policy_output": "sample"}, 5000),
    "fql": BanditSetting({"hidden": 128, "layers": 3, "alpha": 10.0}, 5000),
}

# The papers' experiments (BANDITS.md "The claims to reproduce"), `diffrl bandit --all`:
# (output group, task, algorithms, N values for the variants (empty: the setting's own N),
#  steps (None: each setting's own))
EXPERIMENTS: tuple[tuple[str, str, tuple[str, ...], tuple[int, ...], int | None], ...] = (
    ("corners", "corners", ("bc", "cvaebc", "diffbc", "td3bc", "iql", "dql", "diffcps"), (), None),
    ("cross", "cross", ("bc", "cvaebc", "diffbc", "td3bc", "dql"), (), None),
    ("grid25-far", "grid25-far", ("diffbc", "iql", "dtql"), (), None),
    ("grid25-hard", "grid25-hard", ("diffbc", "iql", "dtql"), (), None),
    ("swissroll-far", "swissroll-far", ("diffbc", "iql", "dtql"), (), None),
    ("circle", "circle", ("bc", "iql", "dql", "diffcps"), (), None),
    # Diffusion-QL's Figure 2: N = 2, 5, 10, 20, 50 for BC and for QL, at half the budget (the
    # N = 50 chain makes a 12 000-step DQL run about 15 minutes here)
    ("corners-N", "corners", ("diffbc", "dql"), (2, 5, 10, 20, 50), 6000),
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One algorithm with optional overrides (e.g. N), trained under its own label."""

    algo: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return self.algo + "".join(f"-{_short(k)}{v}" for k, v in self.overrides)


def _short(key: str) -> str:
    return {"n_steps": "N"}.get(key, key)


def variants(algos: Iterable[str], n_values: Iterable[int] = ()) -> list[Variant]:
    """One variant per algorithm, or one per (algorithm, N) when `n_values` is given."""
    n_values = tuple(n_values)
    if not n_values:
        return [Variant(a) for a in algos]
    return [Variant(a, (("n_steps", n),)) for a in algos for n in n_values]


def canonical_task(task: str) -> str:
    name = ALIASES.get(task, task)
    if name not in TASK_NAMES:
        raise KeyError(f"unknown bandit task {task!r}; tasks: {', '.join(TASK_NAMES)}")
    return name


def bandit_run_config(task: str, variant: Variant, steps: int | None, seed: int) -> RunConfig:
    if variant.algo not in BANDIT_SETTINGS:
        raise KeyError(
            f"no bandit settings for algorithm {variant.algo!r}; "
            f"available: {', '.join(sorted(BANDIT_SETTINGS))}"
        )
    setting = BANDIT_SETTINGS[variant.algo]
    agent = {**setting.agent_for(task), **dict(variant.overrides)}
    if steps and "pretrain_steps" in agent:
        # keep pretraining the same share of a shorter or longer run
        agent["pretrain_steps"] = agent["pretrain_steps"] * steps // setting.steps
    steps = steps or setting.steps
    run = {"algo": variant.algo, "dataset": f"bandit:{task}", "steps": steps, "seed": seed,
           "batch_size": setting.batch_size, "eval_every": max(1, steps // 4),
           "steps_per_call": 500, "mode": "clean"}  # fmt: skip
    return resolve({**run, **agent}, f"bandit settings of {variant.algo}")


# -- one run -------------------------------------------------------------------------------------
def train_variant(
    task: str, variant: Variant, group_dir: Path, steps: int | None, seed: int, progress: bool
) -> dict[str, Any]:
    """Train (or reuse, or resume) one variant in GROUP_DIR/<label>/ and score 1,000 deployed
    actions."""
    run_dir = group_dir / variant.label
    done = run_dir / "bandit.json"
    cfg = bandit_run_config(task, variant, steps, seed)
    if (run_dir / "config.json").exists():
        _check_same(run_dir, cfg)
        if done.exists():
            return json.loads(done.read_text())
        run = launch.resume(run_dir)
    else:
        run = launch.start(cfg, run_dir)
    t0 = time.perf_counter()
    summary = execute(run, progress=progress)
    metrics, samples = summary["final"], run.evaluator.last_samples
    if samples is None:  # trained to the end before this call: score the final state again
        metrics = run.evaluate(run.load_state(run.cfg.steps), run.cfg.steps)
        samples = run.evaluator.last_samples
    np.save(run_dir / "samples.npy", samples)
    record = {
        "algo": variant.algo,
        "label": variant.label,
        "task": task,
        **{k: metrics[k] for k in RECORD_KEYS},
        "best_reward": metrics["best_reward"],
        "action_choice": describe_choice(run.agent, run.choice),
        "steps": run.cfg.steps,
        "seed": run.cfg.seed,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "run_dir": variant.label,
    }
    fileio.write_json_atomic(done, record)
    return record


CHECKED_FIELDS = ("algo", "dataset", "steps", "seed", "batch_size", "agent", "selection",
                  "candidates", "policy_output")  # fmt: skip


def _check_same(run_dir: Path, cfg: RunConfig) -> None:
    """A reused run must have been made with the settings asked for now (its config.json)."""
    have = run_config(run_dir, read_record(run_dir)).to_json()
    want = cfg.to_json()
    for key in CHECKED_FIELDS:
        if have.get(key) != want[key]:
            raise RunError(
                f"{run_dir / 'config.json'}: this run has {key}={have.get(key)!r} but "
                f"{want[key]!r} was asked for; use another --out (or delete the run) to train "
                "with new settings"
            )


# -- a task's table and figure -----------------------------------------------------------------
def run_task(
    task: str,
    chosen: list[Variant],
    out: Path,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], Any] = print,
    group: str | None = None,
) -> list[dict[str, Any]]:
    """Train every variant on `task` under OUT/<group>/ (default: the task's name), then
    (re)write the group's figure and metrics table."""
    task = canonical_task(task)
    group_dir = Path(out) / (group or task)
    records = []
    for variant in chosen:
        log(f"[{group_dir.name}] {variant.label} ...")
        record = train_variant(task, variant, group_dir, steps, seed, progress)
        log(f"[{group_dir.name}] {variant.label}: {summary_line(record)}")
        records.append(record)
    write_task_outputs(task, group_dir, records)
    return records


def write_task_outputs(task: str, task_dir: Path, records: list[dict[str, Any]]) -> list[dict]:
    """Merge `records` into TASK_DIR/metrics.json, write metrics.md and figure.png."""
    merged = {r["label"]: r for r in _read_records(task_dir / "metrics.json")}
    merged.update({r["label"]: r for r in records})
    rows = list(merged.values())
    fileio.write_json_atomic(task_dir / "metrics.json", rows)
    title = task if task_dir.name == task else f"{task_dir.name} ({task})"
    (task_dir / "metrics.md").write_text(markdown_table(title, rows))
    draw_figure(task, task_dir, rows)
    return rows


def _read_records(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


def draw_figure(task: str, task_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Data and rewards, then one panel of sampled actions per algorithm variant."""
    from diffrl.bandits.tasks import make_bandit_dataset

    spec = make_task(task)
    data = make_bandit_dataset(spec)
    panels = {}
    for r in rows:
        samples = np.load(task_dir / r["run_dir"] / "samples.npy")
        best = "" if r["best_mode_share"] is None else f", best {r['best_mode_share']:.2f}"
        panels[f"{r['label']}: support {r['support_rate']:.2f}{best}"] = samples
    return plot_panels(
        spec,
        to_task_coords(spec, data.actions),
        data.rewards,
        panels,
        task_dir / "figure.png",
        overwrite=True,
    )


def summary_line(r: dict[str, Any]) -> str:
    best = "–" if r["best_mode_share"] is None else f"{r['best_mode_share']:.3f}"
    return (
        f"support {r['support_rate']:.3f}, best-mode {best}, "
        f"mean reward {r['mean_true_reward']:.3f} (best {r['best_reward']:.3f})"
    )


def markdown_table(task: str, rows: list[dict[str, Any]]) -> str:
    head = (
        f"### {task}\n\n| algorithm | support rate | best-mode share | mode shares | "
        "mean true reward | actions scored | steps | seed |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        shares = r["mode_shares"]
        shares = "–" if shares is None else " / ".join(f"{s:.2f}" for s in shares)
        best = "–" if r["best_mode_share"] is None else f"{r['best_mode_share']:.3f}"
        lines.append(
            f"| {r['label']} | {r['support_rate']:.3f} | {best} | {shares} | "
            f"{r['mean_true_reward']:.3f} (best {r['best_reward']:.3f}) | {r['action_choice']} "
            f"| {r['steps']} | {r['seed']} |"
        )
    return head + "\n".join(lines) + "\n"


def run_all(
    out: Path,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], Any] = print,
) -> list[dict[str, Any]]:
    """The papers' experiments (EXPERIMENTS), each task's outputs under OUT/<task>/."""
    records = []
    for group, task, algos, n_values, group_steps in EXPERIMENTS:
        chosen = variants(algos, n_values)
        n = steps or group_steps
        records += run_task(task, chosen, out, n, seed, progress, log, group=group)
    return records
