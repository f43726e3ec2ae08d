"""Run logs (runlog.py): strict-JSON records, the log of a resumed run truncated to its checkpoint,
TensorBoard tags grouped by part."""

from __future__ import annotations

import json
import math
import struct

from diffrl.runlog import RunLogger, _short, read_records


def test_records_are_strict_json_and_not_computed_is_null(tmp_path):
    log = RunLogger(tmp_path, start_step=0, total=20, progress=False)
    log.train(10, {"critic/loss": 0.5, "actor/loss": math.nan}, steps_per_s=100.0)
    log.eval(10, {"score": 1.5})
    log.eval(20, None)  # no evaluator: nothing written
    log.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "NaN" not in lines[0]
    parsed = [json.loads(x, parse_constant=lambda c: 1 / 0) for x in lines]  # refuses NaN
    assert parsed[0] == {"kind": "train", "step": 10, "critic/loss": 0.5, "actor/loss": None,
                         "steps_per_s": 100.0}  # fmt: skip
    assert parsed[1] == {"kind": "eval", "step": 10, "score": 1.5}
    assert log.records == parsed == read_records(tmp_path / "metrics.jsonl")


def test_resume_drops_records_past_the_checkpoint(tmp_path):
    log = RunLogger(tmp_path, start_step=0, total=30, progress=False)
    for step in (10, 20, 30):
        log.train(step, {"critic/loss": float(step)}, steps_per_s=1.0)
    log.close()
    again = RunLogger(tmp_path, start_step=20, total=30, progress=False)
    assert [r["step"] for r in again.records] == [10, 20]
    again.train(30, {"critic/loss": 3.0}, steps_per_s=1.0)
    again.close()
    steps = [r["step"] for r in read_records(tmp_path / "metrics.jsonl")]
    assert steps == [10, 20, 30]  # the interrupted run's step 30 is replaced, not doubled


def _scalar_tags(logdir) -> set[str]:
    """The scalar tags in TensorBoard event files (TFRecord framing: length, CRC, event, CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for path in logdir.glob("events.out.tfevents.*"):
        raw, at = path.read_bytes(), 0
        while at < len(raw):
            (size,) = struct.unpack("<Q", raw[at : at + 8])
            event = Event.FromString(raw[at + 12 : at + 12 + size])
            tags |= {v.tag for v in event.summary.value}
            at += 12 + size + 4
    return tags


def test_tensorboard_tags_are_the_metric_names(tmp_path):
    log = RunLogger(tmp_path, start_step=0, total=10, progress=False)
    log.train(10, {"critic/loss": 0.5, "actor/loss": math.nan}, steps_per_s=2.0)
    log.eval(10, {"score": 1.5, "env_id": "Hopper-v5"})
    log.close()
    assert _scalar_tags(tmp_path / "tb") == {
        "critic/loss",
        "train/steps_per_s",
        "eval/score",
    }  # NaN and text skipped


def test_progress_bar_shows_the_main_finite_losses():
    shown = _short({"critic/loss": 0.123456, "actor/bc_loss": math.nan, "behaviour/bc_loss": 2.0,
                    "critic/q_data": 5.0})  # fmt: skip
    assert shown == {"critic/loss": "0.123", "behaviour/bc_loss": "2"}
