"""Model selection over a run's evaluations: final, best during training, offline-selected,
and early-stopped (the official Diffusion-QL protocol).

Offline selection (ALGORITHMS.md §1.8) ranks evaluations by the mean behaviour-cloning loss of
the training window before each one and takes the top_k-th smallest. The official code indexes
this wrongly (`argsort(loss) == top_k` used as a mask); `reference` mode keeps that rule so
scores can be compared with the paper, `clean` mode uses `argsort(loss)[top_k]`.

Early-stopped is the protocol of the official Diffusion-QL README runs (`main.py --early_stop`):
training stops after the first evaluation window whose mean BC loss is above the previous
window's (EarlyStopping with tolerance 1, min_delta 0; the first window is compared with 100),
then offline selection picks among the evaluations up to that one. A run trains on to its end
either way; the rule reports what the official protocol would have reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffrl.agents.api import CHOICE_FIELDS
from diffrl.runlog import TIMING_FIELDS


def offline_index(window_losses: list[float], top_k: int, mode: str) -> int:
    """Index of the evaluation offline selection picks."""
    losses = np.asarray(window_losses, np.float64)
    k = min(top_k, len(losses) - 1)
    order = np.argsort(losses, kind="stable")
    if mode == "clean":
        return int(order[k])
    return int(np.flatnonzero(order == k)[0])  # the official mask: the rank of evaluation k


def early_stop_index(window_losses: list[float], start: float = 100.0) -> int:
    """Index of the evaluation after which the official early stopping ends training: the
    first window whose loss rises above the previous one's; the last when none does."""
    previous = start
    for i, loss in enumerate(window_losses):
        if loss - previous > 0.0:
            return i
        previous = loss
    return len(window_losses) - 1


def window_means(records: list[dict[str, Any]], metric: str) -> list[float | None]:
    """Mean of `metric` over the train records between consecutive evaluations."""
    means, window = [], []
    for r in records:
        if r["kind"] == "train" and r.get(metric) is not None:
            window.append(r[metric])
        elif r["kind"] == "eval":
            means.append(float(np.mean(window)) if window else None)
            window = []
    return means


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    drop = {"kind", "returns", *TIMING_FIELDS}  # a summary holds results, not the machine's speed
    return {k: v for k, v in record.items() if k not in drop}


def summarize(records: list[dict[str, Any]], cfg: Any, metric: str) -> dict[str, Any]:
    """summary.json: the three selection rules side by side, with what produced the numbers.

    `records` are the run's metrics records; `metric` is the train metric offline selection
    ranks evaluations by (the agent's `selection_metric`)."""
    evals = [r for r in records if r["kind"] == "eval"]
    summary: dict[str, Any] = {
        "algo": cfg.algo,
        "dataset": cfg.dataset,
        "preset": cfg.preset,
        "mode": cfg.mode,
        "seed": cfg.seed,
        "steps": cfg.steps,
        "action_choice": {k: getattr(cfg, k) for k in CHOICE_FIELDS},
        "evaluations": len(evals),
        "final": None,
        "best": None,
        "offline_selected": None,
        "early_stopped": None,
    }
    if not evals:
        return summary
    scores = [e.get("score", float("-inf")) for e in evals]
    summary["final"] = _entry(evals[-1])
    summary["best"] = _entry(evals[int(np.argmax(scores))])
    losses = window_means(records, metric)
    if all(v is not None for v in losses):
        summary["offline_selected"] = _offline(evals, losses, cfg, metric)
        stop = early_stop_index(losses)
        summary["early_stopped"] = {
            **_offline(evals[: stop + 1], losses[: stop + 1], cfg, metric),
            "stopped_at_step": evals[stop]["step"],
        }
    return summary


def _offline(evals: list[dict], losses: list[float], cfg: Any, metric: str) -> dict[str, Any]:
    idx = offline_index(losses, cfg.top_k, cfg.mode)
    rule = "argsort(loss)[top_k]" if cfg.mode == "clean" else "official mask (issue #22)"
    return {
        **_entry(evals[idx]),
        "rule": f"rank by mean {metric} of the preceding window, top_k={cfg.top_k}, {rule}",
        "window_loss": losses[idx],
    }
