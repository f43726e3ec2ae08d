"""Run logs: metrics.jsonl (machine-readable), TensorBoard events and a progress bar."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from diffrl.fileio import write_atomic

# fields that depend on the machine's speed, not on the computation
TIMING_FIELDS = ("steps_per_s", "eval_seconds")


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunLogger:
    """Appends train/eval records; on resume, first drops records past the checkpoint step so
    that the log of a resumed run equals the log of an uninterrupted one."""

    def __init__(self, out: Path, start_step: int, total: int, progress: bool = True) -> None:
        self.path = Path(out) / "metrics.jsonl"
        kept = [r for r in read_records(self.path) if r["step"] <= start_step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept).encode())
        self.records = kept  # every record of the run so far, as written
        self.file = self.path.open("a")
        self.tb = _tensorboard(Path(out) / "tb", start_step)
        self.bar = _progress(total, start_step) if progress else None

    def train(self, step: int, metrics: dict[str, float], steps_per_s: float) -> None:
        # strict JSON: a metric not computed in this chunk (NaN) is written as null
        clean = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
        record = {"kind": "train", "step": step, **clean, "steps_per_s": steps_per_s}
        self._write(record)
        if self.tb is not None:
            for key, value in metrics.items():
                if math.isfinite(value):  # NaN: not computed in this chunk (e.g. pretraining)
                    self.tb.add_scalar(key, value, step)  # grouped by part: critic/, actor/...
            self.tb.add_scalar("train/steps_per_s", steps_per_s, step)
        if self.bar is not None:
            self.bar.set_postfix(_short(metrics) | {"it/s": f"{steps_per_s:.0f}"}, refresh=False)
            self.bar.update(step - self.bar.n)

    def eval(self, step: int, result: dict[str, Any] | None) -> None:
        if result is None:
            return
        self._write({"kind": "eval", "step": step, **result})
        if self.tb is not None:
            for key, value in result.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.tb.add_scalar(f"eval/{key}", value, step)
        if self.bar is not None and "score" in result:
            self.bar.write(f"step {step}: eval score {result['score']:.2f}")

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        self.records.append(json.loads(line))  # as a reader of the file would see it
        self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()


def _short(metrics: dict[str, float]) -> dict[str, str]:
    keys = ("critic/loss", "actor/bc_loss", "behaviour/bc_loss", "actor/q_loss", "actor/loss")
    return {k: f"{metrics[k]:.3g}" for k in keys if k in metrics and math.isfinite(metrics[k])}


def _tensorboard(logdir: Path, start_step: int):
    from tensorboardX import SummaryWriter

    # purge_step hides events past the checkpoint that an interrupted run had already written
    return SummaryWriter(logdir=str(logdir), purge_step=start_step if start_step else None)


def _progress(total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, smoothing=0.1)
