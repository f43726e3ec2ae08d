"""Exception classes that the CLI catches, in a module without heavy imports.

They live here so that `diffrl.cli` can name them without importing flax or JAX.
"""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not belong to this run."""


class CheckpointDamaged(CheckpointError):
    """A checkpoint file is there but its bytes are not a whole, verified checkpoint."""


class DivergedError(RuntimeError):
    """Training produced a non-finite loss, gradient norm or parameter; the run stopped."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; `step` is the last step trained, `checkpoint` the step
    it resumes from."""

    def __init__(self, out: str, step: int, checkpoint: int) -> None:
        super().__init__(
            f"interrupted at step {step}; resume with diffrl train --resume {out} "
            f"(it continues from the checkpoint at step {checkpoint})"
        )
        self.step, self.checkpoint = step, checkpoint


class EnvError(ValueError):
    """The evaluation environment does not exist or does not fit the data."""
