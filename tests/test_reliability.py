"""Runs guarded against faults, bad input and each other (docs/reliability.md has the table).

Each test runs the real command: `diffrl.cli.main` in this process where that is the same thing,
a subprocess where another process, a signal or a kill is the point.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from diffrl import launch
from diffrl.cli import main
from diffrl.run import lock, stopping

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)
BC = ["--algo", "bc", "--set", "hidden=8", "--batch-size", "16", "--steps-per-call", "10"]


def _train(out: Path, *extra: str, dataset: str = "bandit:corners") -> list[str]:
    return ["train", *BC, "--dataset", dataset, "--steps", "20", "--eval-every", "10",
            "--quiet", "--out", str(out), *extra]  # fmt: skip


def _npz(path: Path, obs_dim: int = 3, n: int = 64, rewards: float | None = None, **extra) -> str:
    rng = np.random.default_rng(0)
    f32 = np.float32
    r = np.full(n, rewards, f32) if rewards is not None else rng.normal(size=n).astype(f32)
    np.savez(path, observations=rng.normal(size=(n, obs_dim)).astype(f32),
             actions=rng.uniform(-1, 1, (n, 2)).astype(f32), rewards=r,
             terminals=np.zeros(n, bool), **extra)  # fmt: skip
    return str(path)


def _cli(*args: str, prelude: str = "", **kwargs) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    code = prelude + "import sys; from diffrl.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


def _holder(directory: Path) -> subprocess.Popen:
    """Another process that owns `directory` (run/lock.py) until it is killed."""
    code = ("import sys, time; from diffrl.run import lock; lock.acquire(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(120)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


# 1. one process owns a run directory ---------------------------------------------------------
def test_a_second_process_is_refused_and_a_killed_owner_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = _holder(out)
    try:
        assert main(_train(out)) == 2
        err = capsys.readouterr().err
        assert f"is in use by PID {holder.pid} on " in err and "started 20" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert main(_train(out)) == 0  # the killed owner's lock is free to take
    assert f"took over from PID {holder.pid}" in capsys.readouterr().err
    holder = _holder(out)
    try:
        assert main(["train", "--resume", str(out), "--quiet"]) == 2
        assert f"in use by PID {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_two_runs_started_together_leave_one_run(tmp_path):
    out = tmp_path / "run"
    procs = [_cli(*_train(out, "--seed", str(seed))) for seed in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    seed = json.loads((out / "config.json").read_text())["run"]["seed"]
    summary = json.loads((out / "summary.json").read_text())
    winner = next(i for i, (code, _) in enumerate(results) if code == 0)
    assert seed == (1, 2)[winner] and summary["final"]["step"] == 20


# 2. the user's files are never overwritten ------------------------------------------------------
def test_out_with_other_files_or_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text("my own")
    assert main(_train(out)) == 2
    assert "is not empty and holds no run (found summary.json)" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "my own" and not (out / "config.json").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    assert main(_train(a_file)) == 2
    assert "--out is a file, not a directory" in capsys.readouterr().err
    assert a_file.read_text() == "keep"


# 3. the evaluation environment is checked before training -----------------------------------------
def test_env_that_does_not_fit_or_exist_is_refused_before_anything_is_written(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz", obs_dim=17)
    assert main(_train(tmp_path / "a", "--env", "Hopper-v5", dataset=data)) == 2
    err = capsys.readouterr().err
    assert "Hopper-v5 has observations (11,) and actions (3,), the data has (17,) and (2,)" in err
    assert main(_train(tmp_path / "b", "--env", "Hoper-v5", dataset=data)) == 2
    assert "unknown environment 'Hoper-v5'; did you mean Hopper-v5" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# 4. divergence stops the run ---------------------------------------------------------------------
def test_divergence_stops_with_the_step_and_the_last_good_checkpoint(tmp_path, capsys):
    data = _npz(tmp_path / "huge.npz", rewards=1e30)
    out = tmp_path / "run"
    args = ["train", "--algo", "td3bc", "--set", "hidden=8", "--batch-size", "16",
            "--dataset", data, "--steps", "40", "--eval-every", "20", "--steps-per-call", "10",
            "--quiet", "--out", str(out)]  # fmt: skip
    assert main(args) == 3
    (err,) = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]  # one line
    assert "training diverged by step 10" in err
    assert "metric critic/" in err and "last good checkpoint is step 0" in err
    assert not (out / "summary.json").exists()
    for line in (out / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


# 5. checkpoints are verified -------------------------------------------------------------------
def test_a_damaged_checkpoint_is_reported_and_resume_falls_back(tmp_path, capsys):
    straight, out = tmp_path / "straight", tmp_path / "damaged"
    assert main(_train(straight)) == 0 and main(_train(out)) == 0
    newest = out / "checkpoints" / "step_000000020.msgpack"
    raw = bytearray(newest.read_bytes())
    raw[100:4196] = b"\xff" * 4096
    newest.write_bytes(bytes(raw))
    leftover = out / "checkpoints" / ".step_000000030.msgpack.x1y2.tmp"  # a write that was killed
    leftover.write_bytes(b"partial")
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "step_000000020.msgpack: checkpoint is" in err and "trying the one before" in err
    assert (out / "checkpoints" / "step_000000020.msgpack.damaged").exists()
    assert not leftover.exists()
    final = [json.loads((d / "summary.json").read_text())["final"] for d in (straight, out)]
    assert final[0] == final[1]  # retrained from step 10 to exactly the same state


# 6. Ctrl-C and SIGTERM ---------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_with_one_line_and_the_run_resumes(tmp_path, sig):
    out = tmp_path / "run"
    args = ["train", *BC, "--dataset", "bandit:corners", "--steps", "200000", "--eval-every",
            "100000", "--quiet", "--out", str(out)]  # fmt: skip
    proc = _cli(*args)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(sig)
    # a hang guard, not a speed claim: alone it stops within seconds, but beside another test
    # worker compiling on the same two cores it once needed over 60 s
    code, err = proc.wait(timeout=180), proc.stderr.read()
    assert code == 130 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if "interrupted" in x]
    assert "interrupted at step " in line and f"resume with diffrl train --resume {out}" in line
    assert "checkpoint at step 0" in line
    run = launch.resume(out)  # the lock is free and the state resumable
    assert run.latest_checkpoint()[1] == 0
    lock.release(out)


# A signal that lands inside tensorboardX's first write: its queue's feeder thread is starting
# then, and an exception raised there left the writer unable to close (a hang CI once met).
SIGNAL_AS_THE_FEEDER_STARTS = """
import os, signal, threading
_start = threading.Thread.start
def _start_and_signal(thread):
    if thread.name == "QueueFeederThread":
        os.kill(os.getpid(), signal.SIGTERM)
    _start(thread)
threading.Thread.start = _start_and_signal
"""


def test_a_signal_inside_a_log_write_stops_at_the_next_chunk(tmp_path):
    out = tmp_path / "run"
    args = ["train", *BC, "--dataset", "bandit:corners", "--steps", "2000", "--eval-every",
            "1000", "--quiet", "--out", str(out)]  # fmt: skip
    proc = _cli(*args, prelude=SIGNAL_AS_THE_FEEDER_STARTS)
    try:
        code = proc.wait(timeout=120)  # before the fix it never ended
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert code == 130 and "Traceback" not in err, err
    assert "interrupted at step 10;" in err  # the first chunk, whose write the signal met
    (record,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert record["step"] == 10 and record["kind"] == "train"


def test_inside_deferred_stop_the_first_signal_asks_and_the_second_raises():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run only in the main thread")
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stopping.deferred_stop() as stop:
        stop.check()  # nothing asked yet
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode; the sleep only bounds a miss
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# 7. --resume with other flags --------------------------------------------------------------------
def test_resume_refuses_flags_it_would_ignore_and_steps_extend(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train(out)) == 0
    with pytest.raises(SystemExit, match="--seed, --set would not apply"):
        main(["train", "--resume", str(out), "--seed", "3", "--set", "hidden=4"])
    assert main(["train", "--resume", str(out), "--steps", "40", "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["steps"] == 40 and config["extended_from"] == 20
    assert json.loads((out / "summary.json").read_text())["final"]["step"] == 40
    assert main(["train", "--resume", str(out), "--steps", "30", "--quiet"]) == 2
    assert "below the run's 40" in capsys.readouterr().err


# 9. files follow the user's umask ----------------------------------------------------------------
def test_files_follow_the_umask(tmp_path):
    before = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert main(_train(out)) == 0
    finally:
        os.umask(before)
    for name in ("config.json", "metrics.jsonl", "summary.json", "curves.png",
                 "checkpoints/step_000000020.msgpack"):  # fmt: skip
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


# 10. suspicious settings are said out loud ------------------------------------------------------
def test_suspicious_settings_are_said(tmp_path, capsys):
    data = _npz(tmp_path / "small.npz", n=10)
    assert main(_train(tmp_path / "run", dataset=data)) == 0
    err = capsys.readouterr().err
    assert "batch size 16 is larger than the dataset (9 transitions)" in err
    assert "records no environment and --env was not given" in err
    # 8. `diffrl eval` with an unknown env or no episodes: one line each
    run = str(tmp_path / "run")
    assert main(["eval", run, "--env", "Hoper-v5"]) == 2
    assert "unknown environment 'Hoper-v5'" in capsys.readouterr().err
    assert main(["eval", run, "--episodes", "0", "--env", "Pendulum-v1"]) == 2
    assert "--episodes must be a positive number of episodes, found 0" in capsys.readouterr().err
    assert main(["eval", run, "--env", "Pendulum-v1"]) == 2  # 3-dim observations, 1-dim actions
    assert "Pendulum-v1 has observations (3,) and actions (1,)" in capsys.readouterr().err
    args = ["train", "--algo", "dtql", "--dataset", "bandit:corners", "--steps", "100",
            "--out", str(tmp_path / "dtql")]  # fmt: skip
    assert main(args) == 2
    assert "raise --steps, or lower the pretraining with --set pretrain_steps=N" in (
        capsys.readouterr().err
    )
