"""Runs: settings and their resolution, the run directory, and the training loop."""

from diffrl.run.directory import (
    Evaluator,
    Run,
    RunError,
    new_run,
    open_run,
    read_record,
    run_config,
    spec_of,
)
from diffrl.run.loop import chunk_length, device_data, execute, make_chunk_fn
from diffrl.run.settings import (
    RunConfig,
    action_choice,
    agent_config,
    complete,
    from_record,
    resolve,
    split_settings,
)

__all__ = [
    "Evaluator",
    "Run",
    "RunConfig",
    "RunError",
    "action_choice",
    "agent_config",
    "chunk_length",
    "complete",
    "device_data",
    "execute",
    "from_record",
    "make_chunk_fn",
    "new_run",
    "open_run",
    "read_record",
    "resolve",
    "run_config",
    "spec_of",
    "split_settings",
]
