"""Checkpoints: the whole training state as msgpack, written atomically (temp file + rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization, traverse_util

# defined in the light errors module so the CLI can catch it without importing flax; the name
# diffrl.checkpoint.CheckpointError stays valid
from diffrl.errors import CheckpointError
from diffrl.fileio import write_atomic


def save(path: Path, target: Any, meta: dict[str, Any]) -> None:
    """Save a pytree `target` and a JSON-able `meta` dict (step, fingerprint, ...) atomically."""
    payload = {"meta": json.dumps(meta), "tree": serialization.to_state_dict(target)}
    write_atomic(path, serialization.msgpack_serialize(payload))


def load(path: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a pytree shaped like `template` and its meta dict."""
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found") from None
    except Exception as exc:  # msgpack raises several types for damaged files
        raise CheckpointError(f"{path}: checkpoint is unreadable ({exc})") from None
    if not isinstance(payload, dict) or "tree" not in payload or "meta" not in payload:
        raise CheckpointError(f"{path}: not a diffrl checkpoint (no 'tree'/'meta' entries)")
    _check_matches(path, template, payload["tree"])
    tree = serialization.from_state_dict(template, payload["tree"])
    return tree, json.loads(payload["meta"])


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
