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
import subprocess
import sys
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
    good = 0
    for name, setup, code, phrase in CASES:
        proc = diffrl(*setup(args.work))
        ok = proc.returncode == code and phrase in proc.stderr and "Traceback" not in proc.stderr
        good += ok
        last = proc.stderr.strip().splitlines()[-1:] or [""]
        print(
            json.dumps(
                {
                    "case": name,
                    "ok": ok,
                    "rc": proc.returncode,
                    "expected_rc": code,
                    "stderr": last[0][:200],
                }
            ),
            flush=True,
        )
    print(json.dumps({"cases": len(CASES), "behaved": good}))
    sys.exit(0 if good == len(CASES) else 1)


if __name__ == "__main__":
    main()
