"""The behaviour agent's replay buffer: host numpy arrays, saved as append-only chunks.

The buffer never overwrites (its capacity is the number of SAC steps), so any prefix of it is the
data the agent had seen at that step: that prefix is D4RL's `medium-replay`. Each checkpoint
writes only the rows added since the previous one (`rows-<start>-<end>.npz`, atomically), so
saving costs the same at step 10k as at step 1M.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from diffrl.errors import CheckpointError
from diffrl.fileio import write_atomic

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


class Replay:
    """Rows (s, a, r, s', terminated, truncated) in env units, exactly as the env gave them."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int) -> None:
        self.size = 0
        self.data = {
            "observations": np.zeros((capacity, obs_dim), np.float32),
            "actions": np.zeros((capacity, action_dim), np.float32),
            "rewards": np.zeros(capacity, np.float32),
            "next_observations": np.zeros((capacity, obs_dim), np.float32),
            "terminals": np.zeros(capacity, bool),
            "timeouts": np.zeros(capacity, bool),
        }

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        i = self.size
        d = self.data
        d["observations"][i], d["actions"][i], d["rewards"][i] = obs, action, reward
        d["next_observations"][i] = next_obs
        d["terminals"][i], d["timeouts"][i] = terminated, truncated and not terminated
        self.size += 1

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, batch_size)
        batch = {k: self.data[k][idx] for k in FIELDS[:4]}
        batch["terminals"] = self.data["terminals"][idx].astype(np.float32)
        return batch

    def rows(self, start: int, end: int) -> dict[str, np.ndarray]:
        return {k: v[start:end] for k, v in self.data.items()}

    # -- persistence ------------------------------------------------------------------------
    def save_chunk(self, folder: Path, start: int) -> None:
        """Write rows [start, size) as one chunk file (nothing when there are none)."""
        if self.size <= start:
            return
        buf = io.BytesIO()
        np.savez(buf, **self.rows(start, self.size))
        write_atomic(Path(folder) / f"rows-{start:09d}-{self.size:09d}.npz", buf.getvalue())

    def load_chunks(self, folder: Path, upto: int) -> None:
        """Restore rows [0, upto) from chunk files; chunks past `upto` (written after the last
        checkpoint by an interrupted run) are deleted, since the run redoes those steps."""
        self.size = 0
        for path in sorted(Path(folder).glob("rows-*.npz")):
            start, end = (int(x) for x in path.stem.split("-")[1:])
            if end > upto:
                path.unlink()
                continue
            if start != self.size:
                raise CheckpointError(f"{path}: expected replay rows from {self.size}")
            with np.load(path) as chunk:
                for key in FIELDS:
                    self.data[key][start:end] = chunk[key]
            self.size = end
        if self.size != upto:
            raise CheckpointError(
                f"{folder}: replay chunks hold {self.size} rows, the checkpoint expects {upto}"
            )
