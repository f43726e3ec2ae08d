"""run/many.py: seeds trained as one vmapped program, each in its own ordinary run directory."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest
from runhelpers import records_without_timing, tiny_bandit_run

from diffrl import launch
from diffrl.cli import main
from diffrl.run import RunError, execute, lock
from diffrl.run.many import execute_many

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

SEEDS = [0, 1, 2]
# DQL: the diffusion policy, its EMA, the critic and the softmax-ranked candidates all vmapped
DQL = {"hidden": 16, "n_steps": 3, "ema_start": 5, "ema_every": 2}


def leaves(run, step):
    return [np.asarray(x) for x in jax.tree.leaves(run.load_state(step))]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    out = tmp_path_factory.mktemp("group")
    runs = launch.start_many(tiny_bandit_run("dql", DQL), out, SEEDS)
    return out, execute_many(runs, progress=False)


def test_each_seed_writes_an_ordinary_run_directory(group):
    out, summaries = group
    assert [p.name for p in launch.group_dirs(out)] == ["seed0", "seed1", "seed2"]
    for seed, summary in zip(SEEDS, summaries, strict=True):
        run_dir = out / f"seed{seed}"
        names = {p.name for p in run_dir.iterdir()}
        assert {"config.json", "metrics.jsonl", "summary.json", "curves.png"} <= names
        assert (run_dir / "checkpoints" / "step_000000040.msgpack").is_file()
        assert json.loads((run_dir / "config.json").read_text())["run"]["seed"] == seed
        assert summary["seed"] == seed and summary["final"]["step"] == 40
    finals = [s["final"]["score"] for s in summaries]
    assert len(set(finals)) > 1  # the seeds really differ


def test_a_seed_of_the_group_matches_its_single_seed_run(group, tmp_path):
    """Within 1e-5: vmapping batches the matmuls, which changes their summation order on CPU,
    so bit equality is not promised; 40 steps keep the drift far below that."""
    out, summaries = group
    for seed in (2,):  # one seed of the group suffices (each single run costs a compile)
        single = launch.start(tiny_bandit_run("dql", DQL, seed=seed), tmp_path / f"s{seed}")
        alone = execute(single, progress=False)
        together = launch.resume(out / f"seed{seed}")
        lock.release(together.out)
        for x, y in zip(leaves(single, 40), leaves(together, 40), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
        assert alone["final"]["step"] == summaries[seed]["final"]["step"]


def test_a_killed_group_resumes_to_the_uninterrupted_result(group, tmp_path):
    out, _ = group
    copy = tmp_path / "killed"
    shutil.copytree(out, copy)
    # killed after step 20's checkpoints; seed 1 had already written step 40's (it is retrained
    # from the newest step every seed has)
    for seed in SEEDS:
        run_dir = copy / f"seed{seed}"
        (run_dir / "summary.json").unlink()
        if seed != 1:
            (run_dir / "checkpoints" / "step_000000040.msgpack").unlink()
    resumed = launch.resume_many(copy)
    assert [r.latest_checkpoint()[1] for r in resumed] == [20, 40, 20]
    execute_many(resumed, progress=False)
    for seed in SEEDS:
        a = launch.resume(out / f"seed{seed}")
        b = launch.resume(copy / f"seed{seed}")
        for x, y in zip(leaves(a, 40), leaves(b, 40), strict=True):
            np.testing.assert_array_equal(x, y)  # the same program: bit for bit
        assert records_without_timing(a.out) == records_without_timing(b.out)
        lock.release(a.out)
        lock.release(b.out)


def test_groups_that_cannot_share_a_program_are_refused(tmp_path):
    cfg = tiny_bandit_run("bc", {"hidden": 8})
    a = launch.start(cfg, tmp_path / "a")
    b = launch.start(dataclasses.replace(cfg, batch_size=16, seed=1), tmp_path / "b")
    with pytest.raises(RunError, match="differs from .* in batch_size, not only the seed"):
        execute_many([a, b])
    held = {path.parent for path in lock._held}
    assert a.out.resolve() not in held and b.out.resolve() not in held  # released however it ended
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(RunError, match="holds other files \\(notes.txt\\)"):
        launch.start_many(cfg, mine, [0, 1])
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_cli_trains_and_resumes_a_group(tmp_path, capsys):
    out = tmp_path / "g"
    args = ["train", "--algo", "bc", "--set", "hidden=8", "--batch-size", "16", "--steps", "20",
            "--eval-every", "10", "--steps-per-call", "10", "--quiet", "--dataset",
            "bandit:corners", "--out", str(out)]  # fmt: skip
    assert main([*args, "--seeds", "3,5"]) == 0
    printed = capsys.readouterr().out
    assert '"seed3"' in printed and '"seed5"' in printed
    assert main(["train", "--resume", str(out), "--steps", "30", "--quiet"]) == 0
    for seed in (3, 5):
        assert json.loads((out / f"seed{seed}" / "summary.json").read_text())["steps"] == 30
    with pytest.raises(SystemExit, match="--seed or --seeds, not both"):
        main([*args[:-1], str(tmp_path / "h"), "--seeds", "0,1", "--seed", "2"])
    with pytest.raises(SystemExit):
        main([*args, "--seeds", "1,1"])
    assert "distinct non-negative seeds" in capsys.readouterr().err


def test_a_group_is_evaluated_in_one_set_of_environments(tmp_path):
    rng = np.random.default_rng(0)
    f32 = np.float32
    np.savez(tmp_path / "p.npz", observations=rng.normal(size=(200, 3)).astype(f32),
             actions=rng.uniform(-1, 1, (200, 1)).astype(f32),
             rewards=rng.normal(size=200).astype(f32), terminals=np.zeros(200, bool))  # fmt: skip
    cfg = tiny_bandit_run("bc", {"hidden": 8}, steps=20, dataset=str(tmp_path / "p.npz"),
                          env="Pendulum-v1", eval_episodes=2, eval_every=10)  # fmt: skip
    runs = launch.start_many(cfg, tmp_path / "g", [0, 1])
    execute_many(runs, progress=False)
    for seed in (0, 1):
        run = launch.resume(tmp_path / "g" / f"seed{seed}")
        lock.release(run.out)
        logged = [r for r in records_without_timing(run.out) if r["kind"] == "eval"][-1]
        alone = run.evaluate(run.load_state(20), 20)  # this seed's evaluation on its own
        np.testing.assert_allclose(logged["returns"], alone["returns"], rtol=1e-4)
        assert logged["episodes"] == 2
