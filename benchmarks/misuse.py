"""Careless-user cases through the real `diffrl` command, one JSON line each.

Each case sets up files in a fresh work directory, runs `diffrl ...` as a subprocess and checks
the exit status, a phrase the one-line message must contain, that no traceback was printed and,
where it matters, that the user's files are unchanged. The last line counts the cases that
behaved as docs/reliability.md says.

    python benchmarks/misuse.py --work /tmp/misuse
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TINY = [
    "--algo",
    "bc",
    "--set",
    "hidden=8",
    "--batch-size",
    "16",
    "--steps-per-call",
    "10",
    "--steps",
    "20",
    "--eval-every",
    "10",
    "--quiet",
]


def diffrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["diffrl", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def npz(path: Path, obs_dim: int = 3, n: int = 64, **over) -> str:
    rng, f32 = np.random.default_rng(0), np.float32
    arrays = {
        "observations": rng.normal(size=(n, obs_dim)).astype(f32),
        "actions": rng.uniform(-1, 1, (n, 2)).astype(f32),
        "rewards": rng.normal(size=n).astype(f32),
        "terminals": np.zeros(n, bool),
    }
    np.savez(path, **{**arrays, **over})
    return str(path)


def finished(work: Path, name: str = "done") -> str:
    out = work / name
    if not (out / "summary.json").exists():
        diffrl("train", *TINY, "--dataset", "bandit:corners", "--out", str(out))
    return str(out)


def plain_run(work: Path) -> str:
    """A finished run on data that records no environment (so it trained without evaluations)."""
    out = work / "plain"
    if not (out / "summary.json").exists():
        diffrl("train", *TINY, "--dataset", npz(work / "plain.npz"), "--out", str(out))
    return str(out)


def damaged(work: Path) -> str:
    out = finished(work, "damaged")
    path = Path(out) / "checkpoints" / "step_000000020.msgpack"
    raw = bytearray(path.read_bytes())
    raw[100:4196] = b"\xff" * 4096
    path.write_bytes(bytes(raw))
    return out


def user_dir(work: Path) -> str:
    out = work / "mine"
    out.mkdir(exist_ok=True)
    (out / "summary.json").write_text("mine")
    return str(out)


# (name, setup(work) -> args, expected exit status, phrase in stderr)
Case = tuple[str, Callable[[Path], list[str]], int, str]
CASES: list[Case] = [
    (
        "set bool maybe",
        lambda w: [
            "train",
            *TINY,
            "--algo",
            "iql",
            "--dataset",
            "bandit:corners",
            "--set",
            "lr_decay=maybe",
            "--out",
            str(w / "a"),
        ],
        2,
        "setting 'lr_decay': Input should be a valid boolean",
    ),
    (
        "set int 1.5",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            "bandit:corners",
            "--set",
            "hidden=1.5",
            "--out",
            str(w / "b"),
        ],
        2,
        "hidden",
    ),
    (
        "set float fast",
        lambda w: [
            "train",
            *TINY[:-3],
            "--dataset",
            "bandit:corners",
            "--set",
            "lr=fast",
            "--out",
            str(w / "c"),
        ],
        2,
        "'lr'",
    ),
    (
        "negative lr",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            "bandit:corners",
            "--set",
            "lr=-1",
            "--out",
            str(w / "d"),
        ],
        2,
        "greater than 0",
    ),
    (
        "batch 0",
        lambda w: [
            "train",
            *TINY[:4],
            "--batch-size",
            "0",
            "--dataset",
            "bandit:corners",
            "--out",
            str(w / "e"),
        ],
        2,
        "batch_size",
    ),
    (
        "unknown algo",
        lambda w: ["train", "--algo", "dqn", "--dataset", "bandit:corners", "--out", str(w / "f")],
        2,
        "dqn",
    ),
    (
        "unknown setting",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            "bandit:corners",
            "--set",
            "etta=1",
            "--out",
            str(w / "g"),
        ],
        2,
        "unknown setting",
    ),
    (
        "missing dataset file",
        lambda w: ["train", *TINY, "--dataset", str(w / "no.npz"), "--out", str(w / "h")],
        2,
        "not found",
    ),
    (
        "directory as dataset",
        lambda w: ["train", *TINY, "--dataset", str(w), "--out", str(w / "i")],
        2,
        "is a directory",
    ),
    (
        "zero rows",
        lambda w: ["train", *TINY, "--dataset", _empty(w), "--out", str(w / "j")],
        2,
        "0 rows",
    ),
    (
        "object array",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "o.npz", rewards=np.array([object()] * 64)),
            "--out",
            str(w / "k"),
        ],
        2,
        "Python objects",
    ),
    (
        "float32 overflow",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "v.npz", rewards=np.full(64, 1e300)),
            "--out",
            str(w / "l"),
        ],
        2,
        "fit in float32",
    ),
    (
        "terminals 2",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "t.npz", terminals=np.full(64, 2.0)),
            "--out",
            str(w / "m"),
        ],
        2,
        "flags of 0 or 1",
    ),
    (
        "complex rewards",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "c.npz", rewards=np.ones(64, np.complex64)),
            "--out",
            str(w / "n"),
        ],
        2,
        "real numeric",
    ),
    (
        "NaN rewards",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "nan.npz", rewards=np.full(64, np.nan, np.float32)),
            "--out",
            str(w / "o"),
        ],
        2,
        "finite values",
    ),
    (
        "env shape mismatch",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "17.npz", obs_dim=17),
            "--env",
            "Hopper-v5",
            "--out",
            str(w / "p"),
        ],
        2,
        "has observations (11,)",
    ),
    (
        "misspelt env",
        lambda w: [
            "train",
            *TINY,
            "--dataset",
            npz(w / "3.npz"),
            "--env",
            "Hoper-v5",
            "--out",
            str(w / "q"),
        ],
        2,
        "did you mean",
    ),
    (
        "out is a file",
        lambda w: ["train", *TINY, "--dataset", "bandit:corners", "--out", _file(w)],
        2,
        "is a file",
    ),
    (
        "out holds user files",
        lambda w: ["train", *TINY, "--dataset", "bandit:corners", "--out", user_dir(w)],
        2,
        "not empty and holds no run",
    ),
    (
        "out holds a run",
        lambda w: ["train", *TINY, "--dataset", "bandit:corners", "--out", finished(w)],
        2,
        "already holds a run",
    ),
    (
        "resume with --seed",
        lambda w: ["train", "--resume", finished(w), "--seed", "3"],
        1,
        "would not apply",
    ),
    (
        "resume shorter",
        lambda w: ["train", "--resume", finished(w), "--steps", "10"],
        2,
        "only extended",
    ),
    (
        "resume not a run",
        lambda w: ["train", "--resume", str(w / "nothing")],
        2,
        "not a run directory",
    ),
    (
        "resume damaged checkpoint",
        lambda w: ["train", "--resume", damaged(w), "--quiet"],
        0,
        "trying the one before",
    ),
    (
        "divergence",
        lambda w: [
            "train",
            "--algo",
            "td3bc",
            "--set",
            "hidden=8",
            "--batch-size",
            "16",
            "--steps",
            "40",
            "--eval-every",
            "20",
            "--steps-per-call",
            "10",
            "--quiet",
            "--dataset",
            npz(w / "huge.npz", rewards=np.full(64, 1e30, np.float32)),
            "--out",
            str(w / "r"),
        ],
        3,
        "training diverged",
    ),
    (
        "eval unknown env",
        lambda w: ["eval", plain_run(w), "--env", "Hoper-v5"],
        2,
        "unknown environment",
    ),
    (
        "eval env of other spaces",
        lambda w: ["eval", plain_run(w), "--env", "Pendulum-v1"],
        2,
        "Pendulum-v1 has observations (3,) and actions (1,)",
    ),
    (
        "eval --env on a bandit run",
        lambda w: ["eval", finished(w), "--env", "Hopper-v5"],
        2,
        "--env does not apply",
    ),
    (
        "eval episodes 0",
        lambda w: ["eval", finished(w), "--episodes", "0"],
        2,
        "--episodes must be a positive",
    ),
    ("eval not a run", lambda w: ["eval", str(w / "nothing")], 2, "not a run directory"),
    ("eval bad which", lambda w: ["eval", finished(w), "--which", "latest"], 2, "invalid choice"),
    (
        "hdf5 fields of different lengths",
        lambda w: ["train", *TINY, "--dataset", _hdf5(w, actions_rows=60), "--out", str(w / "h5")],
        2,
        "expected 64 rows (as 'observations'), found 60 rows",
    ),
    (
        "truncated hdf5",
        lambda w: ["train", *TINY, "--dataset", _truncated(_hdf5(w)), "--out", str(w / "h6")],
        2,
        "not a readable HDF5 file",
    ),
    (
        "truncated npz",
        lambda w: ["train", *TINY, "--dataset", _truncated(npz(w / "cut.npz")), "--out", str(w)],
        2,
        "not a readable .npz file",
    ),
    (
        "config.json not JSON",
        lambda w: ["train", "--resume", _edited(finished(w), "w1", text="{")],
        2,
        "config.json: not valid JSON",
    ),
    (
        "config.json unknown entry",
        lambda w: ["train", "--resume", _edited(finished(w), "w2", extra={"etta": 1})],
        2,
        "unknown entries 'etta'",
    ),
    (
        "config.json bad value, eval",
        lambda w: ["eval", _edited(finished(w), "w3", run={"steps": "many"})],
        2,
        "setting 'steps'",
    ),
    (
        "resume extends with --steps",
        lambda w: ["train", "--resume", _edited(finished(w), "w4"), "--steps", "40", "--quiet"],
        0,
        "extending",
    ),
    (
        "batch above dataset",
        lambda w: ["train", *TINY, "--dataset", npz(w / "small.npz", n=10), "--out", str(w / "s")],
        0,
        "larger than the dataset",
    ),
    (
        "no evaluation env",
        lambda w: ["train", *TINY, "--dataset", npz(w / "noenv.npz"), "--out", str(w / "u")],
        0,
        "records no environment",
    ),
    (
        "dtql steps below pretraining",
        lambda w: [
            "train",
            "--algo",
            "dtql",
            "--dataset",
            "bandit:corners",
            "--steps",
            "100",
            "--out",
            str(w / "x"),
        ],
        2,
        "pretrain_steps=N",
    ),
]


def _hdf5(work: Path, actions_rows: int = 64) -> str:
    import h5py

    path = work / f"d{actions_rows}.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((64, 3), np.float32)
        f["actions"] = np.zeros((actions_rows, 2), np.float32)
        f["rewards"] = np.zeros(64, np.float32)
        f["terminals"] = np.zeros(64, bool)
    return str(path)


def _truncated(path: str) -> str:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return path


def _edited(done: str, name: str, text: str | None = None, **changes: dict) -> str:
    """A copy of finished run `done` whose config.json is replaced by `text` or has its top
    level updated by `extra` and its "run" entry by `run`."""
    copy = Path(done).parent / name
    shutil.copytree(done, copy)
    config = copy / "config.json"
    if text is None:
        record = json.loads(config.read_text())
        record.update(changes.get("extra", {}))
        record["run"].update(changes.get("run", {}))
        text = json.dumps(record)
    config.write_text(text)
    return str(copy)


# Cases that need more than one process, a signal or a umask: probe(work) -> (status, text),
# where text is stderr plus, for file modes, what was found.
Probe = tuple[str, Callable[[Path], tuple[int, str]], int, str]


def _holder(directory: Path) -> subprocess.Popen:
    """Another process that owns `directory` through diffrl's lock until it is killed."""
    directory.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, time; from diffrl.run import lock; lock.acquire(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _start(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        ["diffrl", *args],
        env=env,
        text=True,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        **kwargs,
    )


def in_use(work: Path) -> tuple[int, str]:
    holder = _holder(work / "busy")
    try:
        proc = diffrl("train", *TINY, "--dataset", "bandit:corners", "--out", str(work / "busy"))
    finally:
        holder.kill()
        holder.wait()
    return proc.returncode, proc.stderr


def killed_owner(work: Path) -> tuple[int, str]:
    holder = _holder(work / "stale")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    proc = diffrl("train", *TINY, "--dataset", "bandit:corners", "--out", str(work / "stale"))
    return proc.returncode, proc.stderr


def two_at_once(work: Path) -> tuple[int, str]:
    out = str(work / "both")
    procs = [
        _start("train", *TINY, "--seed", seed, "--dataset", "bandit:corners", "--out", out)
        for seed in ("1", "2")
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    one_won = sorted(code for code, _ in results) == [0, 2]
    return (0 if one_won else 1), "".join(err for _, err in results)


def interrupted(sig: signal.Signals) -> Callable[[Path], tuple[int, str]]:
    def probe(work: Path) -> tuple[int, str]:
        out = work / f"signal-{sig.name}"
        long = [*TINY[:-5], "--steps", "200000", "--eval-every", "100000", "--quiet"]
        proc = _start("train", *long, "--dataset", "bandit:corners", "--out", str(out))
        deadline = time.monotonic() + 300
        while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        proc.send_signal(sig)
        return proc.wait(timeout=120), proc.stderr.read()

    return probe


def umask_027(work: Path) -> tuple[int, str]:
    out = work / "shared"
    args = ["train", *TINY, "--dataset", "bandit:corners", "--out", str(out)]
    proc = subprocess.run(
        ["diffrl", *args], capture_output=True, text=True, timeout=600, umask=0o027
    )
    names = ["config.json", "metrics.jsonl", "summary.json", "curves.png"]
    files = [out / n for n in names] + sorted((out / "checkpoints").glob("*.msgpack"))
    modes = {oct(os.stat(f).st_mode & 0o777) for f in files if f.exists()}
    return proc.returncode, f"{proc.stderr}\nmodes {sorted(modes)} of {len(files)} files"


PROBES: list[Probe] = [
    ("run directory in use", in_use, 2, "is in use by PID"),
    ("lock of a killed owner", killed_owner, 0, "took over from PID"),
    ("two runs into one --out", two_at_once, 0, "is in use by PID"),
    ("Ctrl-C", interrupted(signal.SIGINT), 130, "interrupted at step"),
    ("SIGTERM", interrupted(signal.SIGTERM), 130, "interrupted at step"),
    ("umask 027", umask_027, 0, "modes ['0o640'] of"),
]


def _empty(work: Path) -> str:
    f32 = np.float32
    path = work / "empty.npz"
    np.savez(
        path,
        observations=np.zeros((0, 3), f32),
        actions=np.zeros((0, 2), f32),
        rewards=np.zeros(0, f32),
        terminals=np.zeros(0, bool),
    )
    return str(path)


def _file(work: Path) -> str:
    path = work / "notes.txt"
    path.write_text("keep")
    return str(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="fresh directory for the cases")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=False)
    runs = [(name, lambda w, s=setup: _ran(diffrl(*s(w))), c, p) for name, setup, c, p in CASES]
    good = 0
    for name, probe, code, phrase in runs + PROBES:
        status, text = probe(args.work)
        ok = status == code and phrase in text and "Traceback" not in text
        good += ok
        last = [line for line in text.strip().splitlines() if phrase in line] or [""]
        record = {"case": name, "ok": ok, "rc": status, "expected_rc": code, "said": last[0][:200]}
        print(json.dumps(record), flush=True)
    total = len(runs) + len(PROBES)
    print(json.dumps({"cases": total, "behaved": good}))
    sys.exit(0 if good == total else 1)


def _ran(proc: subprocess.CompletedProcess) -> tuple[int, str]:
    return proc.returncode, proc.stderr


if __name__ == "__main__":
    main()
