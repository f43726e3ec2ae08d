"""Checkpoints: the whole training state as msgpack, written atomically (temp file + rename).

The state is serialised once more inside the file, next to its SHA-256, so that a damaged
checkpoint (a disk error, a partial copy, bytes overwritten) is refused on load instead of
restoring garbage. Checkpoints written before the checksum (a plain `tree` entry) still load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization, traverse_util

# defined in the light errors module so the CLI can catch it without importing flax; the name
# diffrl.checkpoint.CheckpointError stays valid
from diffrl.errors import CheckpointDamaged, CheckpointError
from diffrl.fileio import write_atomic


def save(path: Path, target: Any, meta: dict[str, Any]) -> None:
    """Save a pytree `target` and a JSON-able `meta` dict (step, fingerprint, ...) atomically."""
    tree = serialization.msgpack_serialize(serialization.to_state_dict(target))
    meta_text = json.dumps(meta)
    payload = {"meta": meta_text, "state": tree, "sha256": _digest(meta_text, tree)}
    write_atomic(path, serialization.msgpack_serialize(payload))


def _digest(meta: str, tree: bytes) -> str:
    return hashlib.sha256(meta.encode() + b"\0" + tree).hexdigest()


def load(path: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a pytree shaped like `template` and its meta dict."""
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found") from None
    except Exception as exc:  # msgpack raises several types for damaged files
        raise CheckpointDamaged(f"{path}: checkpoint is unreadable ({exc})") from None
    stored = _verified_tree(path, payload)
    _check_matches(path, template, stored)
    tree = serialization.from_state_dict(template, stored)
    return tree, json.loads(payload["meta"])


def _verified_tree(path: Path, payload: Any) -> Any:
    """The stored state dict, after its checksum was checked (older files have none)."""
    if not isinstance(payload, dict) or "meta" not in payload:
        raise CheckpointDamaged(f"{path}: not a diffrl checkpoint (no 'meta' entry)")
    if "tree" in payload:  # written before checksums
        return payload["tree"]
    if "state" not in payload or "sha256" not in payload:
        raise CheckpointDamaged(f"{path}: not a diffrl checkpoint (no 'state'/'sha256' entries)")
    state, meta = payload["state"], payload["meta"]
    if not isinstance(state, bytes) or _digest(str(meta), state) != payload["sha256"]:
        raise CheckpointDamaged(f"{path}: checkpoint is damaged (its checksum does not match)")
    try:
        return serialization.msgpack_restore(state)
    except Exception as exc:
        raise CheckpointDamaged(f"{path}: checkpoint is unreadable ({exc})") from None


def _check_matches(path: Path, template: Any, stored: Any) -> None:
    """Same entries, shapes and dtypes as `template`, or a CheckpointError saying what differs."""
    want = _flat(serialization.to_state_dict(template))
    have = _flat(stored)
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise CheckpointError(
            f"{path}: checkpoint does not match this run's configuration "
            f"(missing entries {missing[:3]}, unexpected entries {extra[:3]})"
        )
    for name, value in want.items():
        a, b = np.asarray(value), np.asarray(have[name])
        if a.shape != b.shape or a.dtype != b.dtype:
            raise CheckpointError(
                f"{path}: checkpoint does not match this run's configuration: entry '{name}' "
                f"expected shape {a.shape} {a.dtype}, found {b.shape} {b.dtype}"
            )


def _flat(tree: Any) -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {"": tree}
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}
