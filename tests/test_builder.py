"""The dataset builder on a tiny budget: SAC on InvertedPendulum-v5 (10-step episodes, so both
terminations and time limits occur), every level, Minari and D4RL round trips, exact resume."""

from __future__ import annotations

import argparse
import contextlib
import json
import warnings

import h5py
import jax
import mujoco
import numpy as np
import pytest
from runhelpers import assert_png_has_content

from diffrl import versions
from diffrl.builder import (
    BuildError,
    behaviour,
    build_datasets,
    dataset_id,
    export_hdf5,
    list_datasets,
    recipe,
    store,
)
from diffrl.builder.cli import add_data_parser, run_data
from diffrl.builder.envs import describe_env
from diffrl.data import load_d4rl_hdf5, load_dataset
from diffrl.fileio import file_sha256

ENV = "InvertedPendulum-v5"
KWARGS = {"max_episode_steps": 10}
N = 240  # transitions per level
TINY = {
    "sac_steps": 400,
    "random_steps": 100,
    "eval_every": 100,
    "eval_episodes": 2,
    "ref_episodes": 4,
    "n_envs": 4,
    "env_kwargs": KWARGS,
    "progress": False,
}
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    with contextlib.chdir(root), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = build_datasets(ENV, transitions=N, out=root, **TINY)
    return root, {r.level: r for r in results}


@pytest.fixture
def minari_env(built, monkeypatch):
    root, _ = built
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def load(level: str):
    return load_dataset(f"minari:{dataset_id(ENV, level)}")


def build_record(root, level: str) -> dict:
    return store.read_metadata(root, dataset_id(ENV, level))[store.META_KEY]


def test_level_sizes(built, minari_env):
    root, results = built
    medium = build_record(root, "medium")["medium"]
    expected = {
        "random": N,
        "medium": N,
        "expert": N,
        "medium-expert": 2 * N,
        "medium-replay": medium["snapshot_step"],
    }
    for level, size in expected.items():
        assert results[level].transitions == size, level
        assert load(level).size == size, level
        assert results[level].dataset_id == f"diffrl/invertedpendulum-v5/{level}-v0"
    assert 0 < medium["snapshot_step"] <= TINY["sac_steps"]
    assert medium["snapshot_step"] % TINY["eval_every"] == 0
    assert medium["snapshot_return"] >= medium["threshold"]


@pytest.mark.parametrize("level", ["random", "expert", "medium-replay"])
def test_terminal_and_timeout_flags(minari_env, level):
    ds = load(level)
    assert not (ds.terminals & ds.timeouts).any()
    assert ds.terminals.any() and ds.timeouts.any()
    # InvertedPendulum terminates when |angle| > 0.2: the stored next observation of a terminal
    # step is the real final state (a reset state would have |angle| <= 0.01)
    angle = np.abs(ds.next_observations[:, 1])
    assert (angle[ds.terminals] > 0.2).all()
    assert (angle[~ds.terminals] <= 0.2).all()
    # within an episode s' = next s; time limits fall on the 10th step of an episode
    ends = np.flatnonzero(ds.terminals | ds.timeouts)
    inner = np.setdiff1d(np.arange(ds.size - 1), ends)
    np.testing.assert_array_equal(ds.next_observations[inner], ds.observations[inner + 1])
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    assert (lengths[ds.timeouts[ends]] == KWARGS["max_episode_steps"]).all()


def test_medium_expert_is_medium_then_expert(minari_env):
    both, medium, expert = load("medium-expert"), load("medium"), load("expert")
    for field in FIELDS:
        joined = np.concatenate([getattr(medium, field), getattr(expert, field)])
        np.testing.assert_array_equal(getattr(both, field), joined, err_msg=field)


def test_medium_replay_is_the_buffer_prefix(built, minari_env):
    root, _ = built
    step = build_record(root, "medium-replay")["medium"]["snapshot_step"]
    info = describe_env(ENV, KWARGS)
    cfg = recipe.default_train_config(
        TINY["sac_steps"], 0, random_steps=100, eval_every=100, eval_episodes=2
    )
    rows = behaviour.load_replay(recipe.work_dir(root, info, cfg), info, step).rows(0, step)
    ds = load("medium-replay")
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(ds, field), rows[field], err_msg=field)


def test_loads_through_minari_with_reference_returns(built, minari_env):
    import minari

    root, _ = built
    refs = build_record(root, "medium")["references"]
    assert refs["ref_episodes"] == TINY["ref_episodes"]
    for level in recipe.LEVELS:
        ds_id = dataset_id(ENV, level)
        data = minari.load_dataset(ds_id)
        assert data.total_steps == load(level).size
        assert data.env_spec.id == ENV and data.env_spec.max_episode_steps == 10
        env = data.recover_environment()
        assert env.spec.id == ENV
        env.close()
        ours = load(level)
        assert (ours.ref_min_score, ours.ref_max_score) == (
            refs["ref_min_score"],
            refs["ref_max_score"],
        )
        assert ours.env_id == ENV and ours.normalized_score(refs["ref_max_score"]) == 100.0


def test_export_hdf5_loads_back_bit_for_bit(built, minari_env, tmp_path):
    root, _ = built
    path = export_hdf5(dataset_id(ENV, "medium-replay"), tmp_path / "mr.hdf5", root=root)
    ours = load("medium-replay")
    full = load_d4rl_hdf5(path, terminate_on_end=True)  # every row, as stored
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(full, field), getattr(ours, field), err_msg=field)
        assert getattr(full, field).dtype == getattr(ours, field).dtype
    d4rl = load_d4rl_hdf5(path)  # D4RL's default drops the time-limit rows
    assert d4rl.size == ours.size - int(ours.timeouts.sum())
    np.testing.assert_array_equal(d4rl.observations, ours.observations[~ours.timeouts])
    assert (d4rl.env_id, d4rl.ref_min_score, d4rl.ref_max_score) == (
        ENV,
        ours.ref_min_score,
        ours.ref_max_score,
    )
    with h5py.File(path) as f:
        assert json.loads(f["metadata/diffrl_build"][()])["level"] == "medium-replay"
    with pytest.raises(BuildError, match="existing"):
        export_hdf5(dataset_id(ENV, "medium-replay"), path, root=root)


def test_rerun_keeps_the_built_datasets(built):
    root, _ = built
    with contextlib.chdir(root):
        again = build_datasets(ENV, transitions=N, out=root, **TINY)
    assert [r.written for r in again] == [False] * len(recipe.LEVELS)


def test_existing_dataset_is_not_overwritten(built, tmp_path):
    root, _ = built
    before = (store.dataset_dir(root, dataset_id(ENV, "random")) / "data").stat().st_mtime_ns
    with pytest.raises(BuildError, match="--overwrite"):
        build_datasets(ENV, levels="random", transitions=N + 1, out=root, **TINY)
    after = (store.dataset_dir(root, dataset_id(ENV, "random")) / "data").stat().st_mtime_ns
    assert before == after


def test_random_level_alone_trains_no_agent(tmp_path, capsys):
    with contextlib.chdir(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = build_datasets(ENV, levels="random", transitions=N, out=tmp_path, **TINY)
    assert result.written and result.transitions == N
    work = next((tmp_path / ".diffrl-build").glob("*-sac400"), None)
    assert work is None or not (work / "state.msgpack").exists()  # no SAC step was taken
    assert "no expert is trained for --levels random" in capsys.readouterr().err
    meta = store.read_metadata(tmp_path, dataset_id(ENV, "random"))
    assert "ref_max_score" not in meta and meta[store.META_KEY]["sac_steps"] is None
    # the software it was collected with, so that a rebuild which differs can be diagnosed
    software = meta[store.META_KEY]["software"]
    assert software["jax"] == jax.__version__ and software["numpy"] == np.__version__
    assert software["mujoco"] == mujoco.__version__
    assert software["cpu_simd"] == versions.cpu_simd()  # builds reproduce per instruction set


def test_cpu_simd_names_the_vector_extensions_widest_first(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma avx512f\n\nflags : x\n")
    assert versions.cpu_simd(info) == "avx512f,avx2,sse4_2"
    info.write_text("flags\t\t: fpu sse2\n")
    assert versions.cpu_simd(info) == "none"
    assert versions.cpu_simd(tmp_path / "missing") == "unknown"
    given = tmp_path / "given"
    with contextlib.chdir(tmp_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_datasets(ENV, levels="random", transitions=N, out=given, ref_max_score=91.5, **TINY)
    assert store.read_metadata(given, dataset_id(ENV, "random"))["ref_max_score"] == 91.5
    with pytest.raises(BuildError, match="--ref-max-score: applies to builds without an agent"):
        build_datasets(ENV, levels="expert", out=given, ref_max_score=91.5, **TINY)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env_id": "Hoper-v5"}, "Did you mean Hopper-v5"),
        ({"env_id": "CartPole-v1"}, "continuous action space"),
        ({"env_id": ENV, "levels": "medium,expret"}, "expret"),
        ({"env_id": ENV, "transitions": 0}, "--transitions"),
    ],
)
def test_bad_input_is_refused_before_work(tmp_path, kwargs, message):
    with pytest.raises(BuildError, match=message):
        build_datasets(out=tmp_path, progress=False, **kwargs)
    assert not (tmp_path / ".diffrl-build").exists()


def test_interrupted_training_resumes_exactly(tmp_path):
    info = describe_env("Pendulum-v1")
    cfg = behaviour.TrainConfig(
        steps=330, random_steps=50, eval_every=90, log_every=30, eval_episodes=1
    )
    whole = behaviour.Trainer(info, cfg, tmp_path / "a", progress=False).run()
    with pytest.raises(KeyboardInterrupt):  # mid-episode, after the checkpoint at step 200
        behaviour.Trainer(info, cfg, tmp_path / "b", progress=False).run(_interrupt_at=250)
    with warnings.catch_warnings():
        # the same machine and software: no warning
        warnings.filterwarnings("error", message=".*began with other software")
        resumed = behaviour.Trainer(info, cfg, tmp_path / "b", progress=False).run()
    same = jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), whole, resumed)
    assert all(jax.tree.leaves(same))
    a = behaviour.load_replay(tmp_path / "a", info, cfg.steps).data
    b = behaviour.load_replay(tmp_path / "b", info, cfg.steps).data
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    evals = [behaviour.evaluations(tmp_path / d) for d in "ab"]
    strip = [[{k: v for k, v in r.items() if k != "eval_seconds"} for r in e] for e in evals]
    assert strip[0] == strip[1] and len(strip[0]) == 4  # steps 90, 180, 270, 330
    # 6 x 3.5 inches at 100 dpi: the curve with its band, axes, labels and title
    curve = tmp_path / "b" / "learning_curve.png"
    assert assert_png_has_content(curve, 600, 350, min_colours=20, min_ink=0.02) == (600, 350)


def test_changed_settings_are_refused(tmp_path):
    info = describe_env("Pendulum-v1")
    cfg = behaviour.TrainConfig(steps=20, random_steps=20, eval_every=20, eval_episodes=1)
    behaviour.Trainer(info, cfg, tmp_path, progress=False).run()
    other = behaviour.TrainConfig(steps=20, random_steps=10, eval_every=20, eval_episodes=1)
    with pytest.raises(BuildError, match="same settings"):
        behaviour.Trainer(info, other, tmp_path, progress=False).run()


def test_cli_list_export_and_errors(built, tmp_path, capsys):
    root, _ = built
    parser = argparse.ArgumentParser(prog="diffrl")
    add_data_parser(parser.add_subparsers(dest="command", required=True))
    assert run_data(parser.parse_args(["data", "list", "--out", str(root)])) == 0
    out = capsys.readouterr().out
    assert "diffrl/invertedpendulum-v5/medium-expert-v0" in out and "medium-replay" in out
    rows = list_datasets(root)
    assert {r["level"] for r in rows} == set(recipe.LEVELS)
    assert all(r["bytes"] > 0 and r["ref_max_score"] is not None for r in rows)
    target = tmp_path / "random.hdf5"
    args = ["data", "export", dataset_id(ENV, "random"), str(target), "--out", str(root)]
    assert run_data(parser.parse_args(args)) == 0 and target.is_file()
    bad = ["data", "export", "diffrl/none/absent-v0", str(tmp_path / "x.hdf5"), "--out", str(root)]
    assert run_data(parser.parse_args(bad)) == 2
    assert capsys.readouterr().err.startswith("diffrl data: error: minari:diffrl/none/absent-v0")
    build = ["data", "build", "--env", "CartPole-v1", "--out", str(tmp_path), "--quiet"]
    assert run_data(parser.parse_args(build)) == 2
    assert "continuous" in capsys.readouterr().err


def test_medium_rule():
    evals = [{"step": 10 * i, "return_mean": r} for i, r in enumerate([5.0, 30.0, 50.0, 40.0], 1)]
    chosen = recipe.choose_medium(evals, random_return=10.0)  # threshold 10 + 30/3 = 20
    assert (chosen["snapshot_step"], chosen["snapshot_return"], chosen["threshold"]) == (
        20,
        30.0,
        20.0,
    )
    worse = recipe.choose_medium(evals, random_return=100.0)  # final below random: no medium
    assert worse["snapshot_step"] is None
    # a curve that jumps past the target keeps the snapshot just below it (Hopper-v5's 1M-step
    # run: 908 at 100k, 3 045 at 120k, target 1 155), and never one after the first crossing
    jump = [186.0, 305.0, 908.0, 3045.0, 1160.0, 3432.0]
    evals = [{"step": 20 * i, "return_mean": r} for i, r in enumerate(jump, 1)]
    chosen = recipe.choose_medium(evals, random_return=16.0)
    assert chosen["snapshot_step"] == 60
    assert chosen["threshold"] == pytest.approx(16.0 + (3432.0 - 16.0) / 3)


def test_a_level_made_by_another_medium_rule_is_not_kept(monkeypatch):
    info = recipe.describe_env("Pendulum-v1")
    cfg = recipe.default_train_config(100, 0)
    before = {level: recipe.build_key(info, cfg, level, 10) for level in recipe.LEVELS}
    monkeypatch.setattr(recipe, "MEDIUM_RULE", "first evaluation that reaches the target")
    after = {level: recipe.build_key(info, cfg, level, 10) for level in recipe.LEVELS}
    changed = sorted(level for level in recipe.LEVELS if before[level] != after[level])
    assert changed == sorted(recipe.MEDIUM_LEVELS)  # rebuilt; random and expert are kept


def test_resuming_a_behaviour_run_under_other_software_warns(tmp_path):
    info = describe_env("Pendulum-v1")
    cfg = behaviour.TrainConfig(steps=60, random_steps=50, eval_every=60, log_every=30)
    with pytest.raises(KeyboardInterrupt):
        behaviour.Trainer(info, cfg, tmp_path, progress=False).run(_interrupt_at=55)
    began = json.loads((tmp_path / "software.json").read_text())
    assert began["jax"] == jax.__version__ and began["cpu_simd"]
    (tmp_path / "software.json").write_text(json.dumps({**began, "cpu_simd": "avx512f,avx2"}))
    with pytest.warns(UserWarning, match=r"cpu_simd avx512f,avx2 -> "):
        behaviour.Trainer(info, cfg, tmp_path, progress=False).run()
    # the record keeps what the run began with: every later resume on this machine warns too
    assert json.loads((tmp_path / "software.json").read_text())["cpu_simd"] == "avx512f,avx2"


def test_parity_data_writes_the_builds_medium_from_its_snapshot(built, tmp_path, capsys):
    """benchmarks/parity_data.py collects the medium level from the behaviour run's snapshot:
    its file hashes as the finished build's own medium, and a wrong expectation fails."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "parity_data.py"
    spec = importlib.util.spec_from_file_location("parity_data", script)
    parity_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parity_data)
    root, _ = built
    step = build_record(root, "medium")["medium"]["snapshot_step"]
    own = file_sha256(store.main_data_file(root, dataset_id(ENV, "medium")))
    args = ["--env", ENV, "--sac-steps", "400", "--eval-every", "100", "--transitions", str(N),
            "--build-out", str(root), "--snapshot-step", str(step), "--ref-min", "0",
            "--ref-max", "10"]  # fmt: skip
    tiny = {"random_steps": 100, "eval_episodes": 2, "env_kwargs": KWARGS, "n_envs": 4}
    right = [*args, "--out", str(tmp_path / "a"), "--expect-sha256", own]
    assert parity_data.main(right, **tiny) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["sha256"] == own and line["matches"] and line["transitions"] == N
    wrong = [*args, "--out", str(tmp_path / "b"), "--expect-sha256", "0" * 64]
    assert parity_data.main(wrong, **tiny) == 1
    with pytest.raises(SystemExit, match="expected no dataset"):
        parity_data.main([*args, "--out", str(tmp_path / "a")], **tiny)


def test_snapshot_episodes_names_a_missing_snapshot(built):
    root, _ = built
    with pytest.raises(BuildError, match="snapshot at step 150.*actor-000000400"):
        recipe.snapshot_episodes(ENV, 150, out=root, sac_steps=400, random_steps=100,
                                 eval_every=100, eval_episodes=2, env_kwargs=KWARGS)  # fmt: skip
