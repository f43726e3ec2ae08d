"""A run directory: config.json, checkpoints, and what is needed to continue or evaluate it.

    OUT/config.json              the resolved settings, the agent's Config, the dataset's summary
                                 and fingerprint, the evaluation, the JAX version
    OUT/checkpoints/step_*.msgpack   the whole training state at step 0 and every evaluation
    OUT/metrics.jsonl, tb/       the loop's records (diffrl.runlog)
    OUT/summary.json, curves.png the loop's summary and figures at the end

A `Run` is built from settings and the data's `Spec`; the training data itself is only needed to
train (`data`), not to evaluate a checkpoint again.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import checkpoint, fileio
from diffrl.acting import make_act_fn
from diffrl.agents import get_agent
from diffrl.agents.api import Spec
from diffrl.data import OfflineDataset
from diffrl.errors import CheckpointDamaged
from diffrl.run import lock
from diffrl.run.settings import RunConfig, action_choice, agent_config, complete, from_record
from diffrl.settings import SettingsError

# evaluator(act_fn) -> record with at least "score"; act_fn(obs, index) -> actions, where index
# (e.g. the env step) selects the random draw, so an evaluation is reproducible. An evaluator
# may also offer evaluate_group(evaluators, act_fn) -> records | None, to evaluate a group of
# seeds in one set of environments (run/many.py; GymEvaluator does)
Evaluator = Callable[[Callable[[np.ndarray, int], np.ndarray]], dict[str, Any]]


class RunError(RuntimeError):
    """A run cannot start or resume (bad directory, bad configuration)."""


def spec_of(data: OfflineDataset) -> Spec:
    if -data.action_low != data.action_high:
        raise RunError(
            f"{data.source}: the agents assume a symmetric action box [-m, m]; "
            f"found [{data.action_low}, {data.action_high}]"
        )
    return Spec(data.obs_dim, data.action_dim, float(data.action_high))


@dataclasses.dataclass
class Run:
    """A run directory and everything needed to continue it (`data`) or to act (`act`)."""

    out: Path
    cfg: RunConfig
    spec: Spec
    fingerprint: str  # of the training data, computed once
    data: OfflineDataset | None = None  # the training data; None when reopened to evaluate
    evaluator: Evaluator | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.agent = get_agent(self.cfg.algo)
        self.acfg = agent_config(self.cfg)
        self.choice = action_choice(self.cfg)
        self.train_key, self.eval_key, init_key = jax.random.split(
            jax.random.PRNGKey(self.cfg.seed), 3
        )
        self.template = self.agent.init(self.acfg, self.spec, init_key)
        self.act = make_act_fn(self.agent, self.acfg, self.spec, self.choice)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def checkpoint_path(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:09d}.msgpack"

    def save(self, state: Any, step: int) -> None:
        meta = {"step": step, "fingerprint": self.fingerprint, "algo": self.cfg.algo}
        checkpoint.save(self.checkpoint_path(step), state, meta)

    def checkpoint_steps(self) -> list[int]:
        return sorted(
            int(p.stem.removeprefix("step_")) for p in self.ckpt_dir.glob("step_*.msgpack")
        )

    def latest_checkpoint(self) -> tuple[Any, int] | None:
        """The newest checkpoint that loads and verifies. A damaged one is reported, renamed to
        `*.damaged` (kept, never trained on) and the one before it is tried."""
        for step in reversed(self.checkpoint_steps()):
            path = self.checkpoint_path(step)
            try:
                state, meta = checkpoint.load(path, self.template)
            except CheckpointDamaged as exc:  # a mismatch with this run's config is not skipped
                path.replace(path.with_name(path.name + ".damaged"))
                print(f"{exc}; kept as {path.name}.damaged, trying the one before", file=sys.stderr)
                continue
            self._check_fingerprint(path, meta)
            return state, int(meta["step"])
        return None

    def _check_fingerprint(self, path: Path, meta: dict[str, Any]) -> None:
        if meta.get("fingerprint") != self.fingerprint:
            raise RunError(
                f"{path}: checkpoint was made on different data "
                f"(fingerprint {meta.get('fingerprint')}, dataset now {self.fingerprint})"
            )

    def load_state(self, step: int) -> Any:
        state, _ = checkpoint.load(self.checkpoint_path(step), self.template)
        return state

    def initial_state(self) -> Any:
        """The state a run starts from: the template, with the data's statistics if the agent
        keeps some (TD3+BC's state normalisation; checkpoints carry them)."""
        state = jax.tree.map(jnp.copy, self.template)
        if self.agent.with_data is not None:
            state = self.agent.with_data(self.acfg, state, self.data.observations)
        return state

    def evaluate(self, state: Any, step: int) -> dict[str, Any] | None:
        """The evaluator's record for `state`, timed (`eval_seconds`), or None without one."""
        if self.evaluator is None:
            return None
        key = jax.random.fold_in(self.eval_key, step)

        def act_fn(obs: np.ndarray, index: int) -> np.ndarray:
            return np.asarray(self.act(state, jnp.asarray(obs), key, index))

        t0 = time.perf_counter()
        result = self.evaluator(act_fn)
        result["eval_seconds"] = time.perf_counter() - t0  # whatever the evaluator, its cost
        return result

    def record(self) -> dict[str, Any]:
        """What config.json holds."""
        describe = getattr(self.evaluator, "describe", None)
        return {
            "run": self.cfg.to_json(),
            "agent": dataclasses.asdict(self.acfg),
            "dataset": self.data.summary() if self.data is not None else None,
            "spec": self.spec._asdict(),
            "fingerprint": self.fingerprint,
            "evaluation": describe() if describe is not None else None,
            "jax": {"version": jax.__version__, "backend": jax.default_backend()},
        }


def new_run(
    cfg: RunConfig, out: Path, data: OfflineDataset, evaluator: Evaluator | None = None
) -> Run:
    """Create `out`, lock it, and write config.json. Refused: a file, a directory that already
    holds a run, a non-empty directory that holds none, a directory another process owns.

    Every setting is checked (by building the Run) before anything is written; the lock is held
    until `execute` ends (or the process exits)."""
    out = Path(out)
    run = Run(out, complete(cfg), spec_of(data), data.fingerprint(), data, evaluator)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: --out is a file, not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    take_lock(out)
    try:
        _check_fresh(out)
        fileio.write_json_atomic(out / "config.json", run.record())
    except BaseException:
        lock.release(out)
        raise
    return run


def take_lock(out: Path) -> None:
    try:
        lock.acquire(out)
    except lock.LockedError as exc:
        raise RunError(f"{exc}; wait for it to finish or stop it first") from None


def _check_fresh(out: Path) -> None:
    """`out` holds nothing but our lock: never write into a directory of the user's."""
    if (out / "config.json").exists():
        raise RunError(
            f"{out} already holds a run (config.json exists); continue it with "
            f"`diffrl train --resume {out}` or choose another --out"
        )
    found = sorted(p.name for p in out.iterdir() if p.name != lock.LOCK_NAME)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise RunError(
            f"{out} is not empty and holds no run (found {shown}); diffrl does not write "
            "among files it did not make: choose an empty or new --out"
        )


def clean_temp_files(out: Path) -> list[Path]:
    """Remove the temp files of writes killed mid-way (only under the run's lock)."""
    found = fileio.temp_files(out) + fileio.temp_files(Path(out) / "checkpoints")
    for path in found:
        path.unlink(missing_ok=True)
    return found


# What Run.record() writes, plus what extending a run adds; anything else is a hand edit
# that would otherwise be ignored without a word.
RECORD_KEYS = frozenset(
    {"run", "agent", "dataset", "spec", "fingerprint", "evaluation", "jax", "extended_from"}
)


def read_record(out: Path) -> dict[str, Any]:
    """config.json of run directory `out`, checked to be one."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise RunError(f"{out}: not a run directory (no config.json)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or "run" not in record:
        raise RunError(f"{path}: not a diffrl run configuration (no 'run' entry)")
    unknown = sorted(set(record) - RECORD_KEYS)
    if unknown:
        raise RunError(
            f"{path}: unknown entries {', '.join(map(repr, unknown))}; "
            f"a run configuration holds {', '.join(sorted(RECORD_KEYS))}"
        )
    return record


def run_config(out: Path, record: dict[str, Any]) -> RunConfig:
    """The settings config.json records, checked like any other settings."""
    try:
        return from_record(record["run"], f"{Path(out) / 'config.json'}")
    except SettingsError as exc:
        raise RunError(str(exc)) from None


def open_run(
    out: Path,
    data: OfflineDataset | None = None,
    evaluator: Evaluator | None = None,
    record: dict[str, Any] | None = None,
) -> Run:
    """Re-open run directory `out` from its config.json: with `data` to train on, or without
    to act and evaluate (the spec and fingerprint come from config.json)."""
    record = record if record is not None else read_record(out)
    cfg = run_config(out, record)
    if data is not None:  # to train: this process must own the directory
        run = Run(Path(out), cfg, spec_of(data), data.fingerprint(), data, evaluator)
        take_lock(out)
        clean_temp_files(out)
        return run
    spec = record.get("spec") or _legacy_spec(record)
    return Run(Path(out), cfg, Spec(**spec), record.get("fingerprint", "?"), None, evaluator)


def _legacy_spec(record: dict[str, Any]) -> dict[str, Any]:
    """The Spec of a config.json written before it recorded one, from its dataset summary."""
    summary = record.get("dataset") or {}
    return {
        "obs_dim": summary["obs_dim"],
        "action_dim": summary["action_dim"],
        "max_action": float(summary["action_bounds"][1]),
    }
