"""Exception classes that the CLI catches, in a module without heavy imports.

They live here so that `diffrl.cli` can name them without importing flax or JAX.
"""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not belong to this run."""
