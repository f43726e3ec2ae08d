"""Figures drawn from a run directory's logs.

`plot_constraint(run_dir)` draws DiffCPS's constraint from metrics.jsonl: the multiplier λ (stored
and as used, i.e. clamped), the diffusion loss L_bc against the bound κ, and the share of policy
updates that violated the constraint, each per logged training chunk.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from diffrl.runlog import read_records

_SERIES = ("dual/lambda", "dual/lambda_used", "actor/bc_loss", "dual/constraint_violated")


def _series(records: list[dict], name: str) -> tuple[list[int], list[float]]:
    """(steps, values) of a train metric, skipping chunks without it (null or NaN: a chunk with
    no policy step)."""
    pts = [
        (r["step"], float(r[name]))
        for r in records
        if r.get("kind") == "train" and r.get(name) is not None and math.isfinite(float(r[name]))
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def _kappa(records: list[dict]) -> float | None:
    """κ, recovered from the records: every chunk logs bc_loss and bc_minus_kappa = bc_loss − κ."""
    for r in records:
        if r.get("kind") == "train" and r.get("dual/bc_minus_kappa") is not None:
            return round(float(r["actor/bc_loss"]) - float(r["dual/bc_minus_kappa"]), 6)
    return None


def _save(fig: Figure, axes, path: Path) -> Path:
    """Label every panel's step axis, lay out and write the figure as PNG."""
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def plot_constraint(
    run_dir: str | Path, name: str = "constraint.png", records: list[dict] | None = None
) -> Path:
    """Write `run_dir/name` (three panels: λ, L_bc vs κ, violation rate vs step); return its path.

    `records` default to the run's metrics.jsonl. Raises ValueError when they hold no λ (not a
    DiffCPS run, or no training yet).
    """
    run_dir = Path(run_dir)
    records = records if records is not None else read_records(run_dir / "metrics.jsonl")
    data = {k: _series(records, k) for k in _SERIES}
    if not data["dual/lambda"][0]:
        raise ValueError(
            f"{run_dir}: metrics.jsonl holds no 'dual/lambda' records (not a DiffCPS run?)"
        )
    fig = Figure(figsize=(11.0, 3.2))
    FigureCanvasAgg(fig)
    ax_lam, ax_bc, ax_viol = fig.subplots(1, 3)
    ax_lam.plot(*data["dual/lambda"], label="λ (stored)")
    ax_lam.plot(*data["dual/lambda_used"], "--", label="clamp(λ, λ_min, λ_max)")
    ax_lam.set_title("Lagrange multiplier λ", fontsize=9)
    ax_lam.legend(fontsize=7)
    ax_bc.plot(*data["actor/bc_loss"], label="L_bc (policy steps)")
    kappa = _kappa(records)
    if kappa is not None:
        ax_bc.axhline(kappa, color="tab:red", ls="--", label=f"κ = {kappa:g}")
    ax_bc.set_title("diffusion loss L_bc against κ", fontsize=9)
    ax_bc.legend(fontsize=7)
    ax_viol.plot(*data["dual/constraint_violated"], color="tab:purple")
    ax_viol.set_ylim(-0.02, 1.02)
    ax_viol.set_title("share of policy updates with L_bc > κ", fontsize=9)
    return _save(fig, (ax_lam, ax_bc, ax_viol), run_dir / name)


def _curves(bc_metric: str) -> tuple[str, ...]:
    return ("critic/loss", bc_metric, "critic/q_data", "actor/loss")


def plot_learning_curves(
    run_dir: str | Path,
    name: str = "curves.png",
    records: list[dict] | None = None,
    bc_metric: str = "actor/bc_loss",
) -> Path:
    """Write `run_dir/name`: the evaluation score and the main training losses against the step
    (`records` default to the run's metrics.jsonl; `bc_metric` is the agent's BC loss, DTQL's
    is its behaviour network's)."""
    run_dir = Path(run_dir)
    records = records if records is not None else read_records(run_dir / "metrics.jsonl")
    evals = [r for r in records if r.get("kind") == "eval" and r.get("score") is not None]
    curves = _curves(bc_metric)
    fig = Figure(figsize=(3.0 * (1 + len(curves)), 3.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 1 + len(curves))
    axes[0].plot([r["step"] for r in evals], [r["score"] for r in evals], "o-")
    axes[0].set_title("evaluation score", fontsize=9)
    for ax, metric in zip(axes[1:], curves, strict=True):
        ax.plot(*_series(records, metric))
        ax.set_title(metric, fontsize=9)
    return _save(fig, axes, run_dir / name)


def plot_run(run_dir: str | Path, records: list[dict], bc_metric: str) -> list[Path]:
    """The figures a finished run gets from its records: learning curves, and the constraint
    when the records hold one (DiffCPS)."""
    run_dir = Path(run_dir)
    paths = [plot_learning_curves(run_dir, records=records, bc_metric=bc_metric)]
    if _series(records, "dual/lambda")[0]:
        paths.append(plot_constraint(run_dir, records=records))
    return paths
