"""One process owns a run directory: an exclusive lock on `OUT/.lock`, taken before anything is
written.

The lock is the kernel's (`flock`): it is released when its owner exits, however it exits, so a
lock left by a killed process is free to take, and of two processes only one can hold it. The
file also records the owner's PID, host and start time, which a refused process names. The file
stays in the directory when the lock is released (removing it would let two processes lock two
different files of the same name).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # lock path -> open descriptor, for the locks this process holds


class LockedError(RuntimeError):
    """Another live process owns the run directory."""


def acquire(out: Path) -> Path:
    """Own `out` (which must exist); re-entrant within one process. Returns the lock's path."""
    path = Path(out).resolve() / LOCK_NAME
    if path in _held:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        raise LockedError(f"{out} is in use by {_describe(holder)}") from None
    previous = _read(fd)  # a killed owner's record, now stale: say that it was taken over
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(owner).encode(), 0)
    _held[path] = fd
    if previous and previous.get("pid") != os.getpid():
        print(f"{out}: took over from {_describe(previous)}, which no longer runs", file=sys.stderr)
    return path


def release(out: Path) -> None:
    """Give up `out` (the lock file stays, empty)."""
    path = Path(out).resolve() / LOCK_NAME
    fd = _held.pop(path, None)
    if fd is not None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read(fd: int) -> dict | None:
    raw = os.pread(fd, 4096, 0)
    try:
        holder = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another process (it has not written its name yet)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
    return f"PID {holder.get('pid')} on {holder.get('host')}, started {started}"
