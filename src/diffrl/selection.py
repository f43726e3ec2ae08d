"""Model selection over a run's evaluations: final, best during training, offline-selected.

Offline selection (ALGORITHMS.md §1.8) ranks evaluations by the mean behaviour-cloning loss of
the training window before each one and takes the top_k-th smallest. The official code indexes
this wrongly (`argsort(loss) == top_k` used as a mask); `reference` mode keeps that rule so
scores can be compared with the paper, `clean` mode uses `argsort(loss)[top_k]`.
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
    }
    if not evals:
        return summary
    scores = [e.get("score", float("-inf")) for e in evals]
    summary["final"] = _entry(evals[-1])
    summary["best"] = _entry(evals[int(np.argmax(scores))])
    losses = window_means(records, metric)
    if all(v is not None for v in losses):
        idx = offline_index(losses, cfg.top_k, cfg.mode)
        rule = "argsort(loss)[top_k]" if cfg.mode == "clean" else "official mask (issue #22)"
        summary["offline_selected"] = {
            **_entry(evals[idx]),
            "rule": f"rank by mean {metric} of the preceding window, top_k={cfg.top_k}, {rule}",
            "window_loss": losses[idx],
        }
    return summary
