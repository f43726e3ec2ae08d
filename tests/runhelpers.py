"""Helpers shared by the tests that kill and resume runs."""

from __future__ import annotations

from pathlib import Path

from diffrl import train
from diffrl.runlog import TIMING_FIELDS, read_records


class CrashAtSecondEval:
    """An evaluator factory whose evaluator raises on its second call (a crash mid-run)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, run):
        inner = train.default_evaluator(run)

        def evaluate(act_fn):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt("simulated kill")
            return inner(act_fn)

        return evaluate


def records_without_timing(out: Path) -> list[dict]:
    """metrics.jsonl of a run without the fields that depend on the machine's speed."""
    return [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        for r in read_records(Path(out) / "metrics.jsonl")
    ]
