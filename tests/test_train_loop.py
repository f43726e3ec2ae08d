"""The training loop end to end on a bandit: logs, checkpoints, summary, exact resume."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from runhelpers import crash_and_resume, records_without_timing

from diffrl import fileio, train
from diffrl.runlog import read_records

TINY = {"hidden": 16, "selection": "none", "n_steps": 3}


def tiny_config(**changes) -> train.RunConfig:
    base = dict(
        algo="dql",
        dataset="bandit:corners",
        steps=60,
        eval_every=20,
        batch_size=32,
        steps_per_call=10,
        agent=dict(TINY),
    )
    return train.RunConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    run = train.new_run(tiny_config(), out)
    summary = train.execute(run, progress=False)
    return out, summary


def test_run_directory_contents(uninterrupted):
    out, summary = uninterrupted
    for name in ("config.json", "metrics.jsonl", "summary.json", "curves.png"):
        assert (out / name).exists(), name
    assert list((out / "tb").glob("events.out.tfevents.*")), "no TensorBoard events"
    steps = sorted(int(p.stem.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    assert steps == [0, 20, 40, 60]
    records = read_records(out / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "eval"] == [20, 40, 60]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == list(range(10, 61, 10))
    assert all(np.isfinite(r["critic_loss"]) and r["steps_per_s"] > 0 for r in records
               if r["kind"] == "train")
    for rule in ("final", "best", "offline_selected"):
        assert summary[rule] is not None and "score" in summary[rule]
    assert summary["final"]["step"] == 60
    assert summary["best"]["score"] == max(r["score"] for r in records if r["kind"] == "eval")


def test_refuses_to_overwrite_a_run(uninterrupted):
    out, _ = uninterrupted
    with pytest.raises(train.RunError, match="already holds a run"):
        train.new_run(tiny_config(), out)


def test_killed_and_resumed_run_matches_uninterrupted(uninterrupted, tmp_path):
    full_out, full_summary = uninterrupted
    out = tmp_path / "resumed"
    _, resumed, crashed_at = crash_and_resume(tiny_config(), out)
    # the crash came after the train records of steps 30 and 40 had been logged
    assert crashed_at == 40

    full = records_without_timing(full_out)
    again = records_without_timing(out)
    assert again == full
    assert resumed["final"] == full_summary["final"]

    run_full = train.open_run(full_out)
    a = run_full.load_state(60)
    b = train.open_run(out).load_state(60)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_refuses_foreign_data(uninterrupted, tmp_path):
    out = tmp_path / "other"
    train.new_run(tiny_config(steps=20), out)
    record = json.loads((out / "config.json").read_text())
    run = train.open_run(out)
    run.save(run.template, 0)
    record["run"]["seed"] = 1  # another seed draws other bandit data
    fileio.write_json_atomic(out / "config.json", record)
    with pytest.raises(train.RunError, match="different data"):
        train.open_run(out).latest_checkpoint()


def test_preset_resolution_respects_explicit_flags():
    base = train.RunConfig(algo="dql", dataset="d4rl:hopper-medium-v2", steps=123)
    cfg = train.resolve_config("hopper-medium-v2", base, explicit={"steps"})
    assert cfg.preset == "hopper-medium-v2"
    assert cfg.steps == 123  # explicit wins over the preset's 2000 epochs
    assert cfg.top_k == 2 and cfg.agent["grad_norm"] == 9.0
    cfg = train.resolve_config("walker2d-medium-v2", train.RunConfig(), explicit=set())
    assert cfg.steps == 2_000_000 and cfg.agent["grad_norm"] == 1.0
    cfg = train.resolve_config("antmaze-large-play-v0", train.RunConfig(), explicit=set())
    assert cfg.reward_transform == "cql_antmaze" and cfg.agent["max_q_backup"] is True
    assert cfg.eval_episodes == 100
    assert train.resolve_config("my-data", train.RunConfig(), explicit=set()).preset is None


def test_unknown_agent_setting_is_a_clear_error():
    with pytest.raises(train.RunError, match="unknown dql setting"):
        train.agent_config(tiny_config(agent={"etta": 1.0}))
