"""The run package: the loop end to end on a bandit (logs, checkpoints, summary, exact resume),
the run directory, and the resolution of settings and presets."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from runhelpers import crash_and_resume, records_without_timing, tiny_bandit_run

from diffrl import fileio, launch
from diffrl.run import RunConfig, RunError, agent_config, execute, resolve
from diffrl.runlog import read_records
from diffrl.settings import SettingsError

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

TINY = {"hidden": 16, "n_steps": 3}


def tiny_config(**changes) -> RunConfig:
    return tiny_bandit_run("dql", TINY, **{"steps": 60, "selection": "none", **changes})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    run = launch.start(tiny_config(), out)
    summary = execute(run, progress=False)
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
    assert all(
        np.isfinite(r["critic/loss"]) and r["steps_per_s"] > 0
        for r in records
        if r["kind"] == "train"
    )
    for rule in ("final", "best", "offline_selected"):
        assert summary[rule] is not None and "score" in summary[rule]
    assert summary["final"]["step"] == 60
    assert summary["best"]["score"] == max(r["score"] for r in records if r["kind"] == "eval")


def test_refuses_to_overwrite_a_run(uninterrupted):
    out, _ = uninterrupted
    with pytest.raises(RunError, match="already holds a run"):
        launch.start(tiny_config(), out)


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

    run_full = launch.resume(full_out)
    a = run_full.load_state(60)
    b = launch.resume(out).load_state(60)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_refuses_foreign_data(uninterrupted, tmp_path):
    out = tmp_path / "other"
    launch.start(tiny_config(steps=20), out)
    record = json.loads((out / "config.json").read_text())
    run = launch.resume(out)
    run.save(run.template, 0)
    record["run"]["seed"] = 1  # another seed draws other bandit data
    fileio.write_json_atomic(out / "config.json", record)
    with pytest.raises(RunError, match="different data"):
        launch.resume(out).latest_checkpoint()


def test_preset_resolution_respects_explicit_flags():
    cfg = resolve({"algo": "dql", "dataset": "d4rl:hopper-medium-v2", "steps": 123})
    assert cfg.preset == "hopper-medium-v2"
    assert cfg.steps == 123  # explicit wins over the preset's 2000 epochs
    assert cfg.top_k == 2 and cfg.agent["grad_norm"] == 9.0
    cfg = resolve({"dataset": "d4rl:walker2d-medium-v2"})
    assert cfg.steps == 2_000_000 and cfg.agent["grad_norm"] == 1.0
    cfg = resolve({"dataset": "d4rl:antmaze-large-play-v0"})
    assert cfg.reward_transform == "cql_antmaze" and cfg.agent["max_q_backup"] is True
    assert cfg.eval_episodes == 100
    assert resolve({"dataset": "my-data.npz"}).preset is None
    assert resolve({"dataset": "d4rl:hopper-medium-v2", "preset": "none"}).preset is None
    # an explicit agent setting wins over the preset's
    assert resolve({"dataset": "d4rl:hopper-medium-v2", "grad_norm": "3"}).agent["grad_norm"] == 3.0


def test_resolution_fills_in_the_action_choice_and_types_the_overrides():
    cfg = resolve({"algo": "dtql", "dataset": "x.npz", "lr_decay": "false", "hidden": "64"})
    assert (cfg.selection, cfg.candidates, cfg.policy_output) == ("softmax", 1024, "sample")
    assert cfg.agent == {"lr_decay": False, "hidden": 64}  # typed, not the strings given
    assert agent_config(cfg).lr_decay is False
    cfg = resolve({"algo": "iql", "dataset": "x.npz", "selection": "argmax", "candidates": "16"})
    assert (cfg.selection, cfg.candidates, cfg.policy_output) == ("argmax", 16, "mean")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr_decay": "maybe"}, "setting 'lr_decay': Input should be a valid boolean.*'maybe'"),
        ({"hidden": "1.5"}, "setting 'hidden': Input should be a valid integer.*'1.5'"),
        ({"hidden": 1.5}, "setting 'hidden': Input should be a valid integer.*1.5"),
        ({"actor_lr": "fast"}, "setting 'actor_lr': Input should be a valid number.*'fast'"),
        ({"actor_lr": "-1e-3"}, "setting 'actor_lr': Input should be greater than 0.*-1e-3"),
        ({"gamma": "1.5"}, "setting 'gamma': Input should be less than or equal to 1"),
        ({"gamma": "0"}, "setting 'gamma': Input should be greater than 0"),
        ({"batch_size": "0"}, "setting 'batch_size': Input should be greater than 0"),
        ({"beta_schedule": "sigmoid"}, "'vp', 'linear' or 'cosine'.*'sigmoid'"),
        ({"selection": "best"}, "'none', 'softmax' or 'argmax'.*'best'"),
        ({"mode": "fast"}, "'reference' or 'clean'"),
        ({"etta": "1"}, "unknown setting 'etta'; valid settings: .*eta"),
        ({"algo": "dqn"}, "setting 'algo': unknown algorithm; valid: bc, cvaebc"),
        ({"reward_transform": "x"}, "unknown reward transform; valid: no"),
        ({"hidden": "true"}, "setting 'hidden': Input should be a valid integer"),
    ],
)
def test_bad_settings_are_one_line_errors(values, message):
    with pytest.raises(SettingsError, match=message) as info:
        resolve({"algo": "dql", "dataset": "x.npz", **values}, "diffrl train")
    assert "\n" not in str(info.value) and str(info.value).startswith("diffrl train")


@pytest.mark.parametrize(
    ("text", "want"), [("true", True), ("1", True), ("True", True), ("false", False), ("0", False)]
)
def test_booleans_accept_true_false_1_0(text, want):
    assert resolve({"dataset": "x.npz", "max_q_backup": text}).agent["max_q_backup"] is want


def test_ranking_is_refused_for_agents_without_q():
    with pytest.raises(SettingsError, match="td3bc does not rank candidate actions"):
        resolve({"algo": "td3bc", "dataset": "x.npz", "selection": "softmax", "candidates": 8})


def test_config_json_of_an_older_run_moves_the_action_choice(uninterrupted, tmp_path):
    out, _ = uninterrupted
    record = json.loads((out / "config.json").read_text())
    record["run"]["agent"] = {**record["run"]["agent"], "selection": "argmax", "candidates": 3}
    for key in ("selection", "candidates", "policy_output"):
        del record["run"][key]
    old = tmp_path / "old"
    old.mkdir()
    fileio.write_json_atomic(old / "config.json", record)
    run = launch.reopen(old)
    assert (run.choice.selection, run.choice.candidates) == ("argmax", 3)
    assert "selection" not in run.cfg.agent


def test_config_json_with_bad_values_is_refused(uninterrupted, tmp_path):
    out, _ = uninterrupted
    record = json.loads((out / "config.json").read_text())
    record["run"]["steps"] = "many"
    bad = tmp_path / "bad"
    bad.mkdir()
    fileio.write_json_atomic(bad / "config.json", record)
    with pytest.raises(RunError, match="config.json: setting 'steps': Input should be a valid"):
        launch.reopen(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config.json: not valid JSON"):
        launch.reopen(bad)
    record["run"]["steps"] = 20
    record["etta"] = 1.0  # a hand edit at the top level must not be ignored either
    fileio.write_json_atomic(bad / "config.json", record)
    with pytest.raises(RunError, match="config.json: unknown entries 'etta'; a run configuration"):
        launch.reopen(bad)
    record.pop("etta")
    record["run"]["etta"] = 1.0
    fileio.write_json_atomic(bad / "config.json", record)
    with pytest.raises(RunError, match="etta"):
        launch.reopen(bad)


def test_unknown_agent_setting_is_a_clear_error():
    with pytest.raises(SettingsError, match="unknown setting 'etta'"):
        agent_config(tiny_config(agent={"etta": 1.0}))


def test_fit_takes_a_mapping_of_settings_like_the_cli(tmp_path):
    import diffrl

    settings = {"algo": "bc", "dataset": "bandit:corners", "steps": 20, "eval_every": 10,
                "batch_size": 16, "steps_per_call": 10, "hidden": "8"}  # fmt: skip
    summary = diffrl.fit(settings, tmp_path / "fit", progress=False)
    assert summary["final"]["step"] == 20 and summary["action_choice"]["selection"] == "none"
    recorded = json.loads((tmp_path / "fit" / "config.json").read_text())["run"]
    assert recorded["agent"] == {"hidden": 8}
    with pytest.raises(SettingsError, match="fit: bc: setting 'hidden'"):
        diffrl.fit({**settings, "hidden": "wide"}, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
