"""Atomic file writing, used by runs, the dataset builder, the bandit suite and the bench.

A reader sees the old file or the new one, never a part: data goes to a temp file in the same
directory, is flushed to disk, and replaces the target with one rename.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_files(directory: Path) -> list[Path]:
    """Temp files `write_atomic` leaves in `directory` when its process is killed mid-write."""
    return sorted(Path(directory).glob(f".*.*{TEMP_SUFFIX}"))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file + fsync + rename); the temp file never stays
    (unless the process is killed: `temp_files` finds it). The file gets the mode a plain
    `open` would give it under the user's umask (mkstemp's own is 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def strict_json(obj: Any) -> Any:
    """`obj` with every NaN and infinity replaced by None, so that strict JSON readers accept it."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    """Indented, key-sorted, strict JSON (NaN and infinities become null), written atomically."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=True, allow_nan=False)
    write_text_atomic(path, text + "\n")


def claim_record(path: Path, record: Any) -> Any | None:
    """Write `record` (JSON) to `path` if there is none; return the one found there when it
    differs (a folder started with other settings), else None. `record` is compared as JSON
    reads it back (tuples as lists)."""
    want = json.loads(json.dumps(record))
    if not path.exists():
        write_json_atomic(path, want)
        return None
    have = json.loads(path.read_text())
    return None if have == want else have


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in blocks: datasets are gigabytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
