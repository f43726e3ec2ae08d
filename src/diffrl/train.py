"""The training loop: scan-fused chunks of updates, evaluation, checkpoints, logs, selection.

Nothing here is algorithm-specific: an agent module supplies `Config`, `init`, `update`, `act`.
Batches are sampled on the device inside `lax.scan`; the key of step i is `fold_in(key, i)`, so a
run resumed from a checkpoint draws exactly the batches and noise an uninterrupted run draws.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import checkpoint, fileio, plots, selection
from diffrl.agents import get_agent
from diffrl.agents.common import Batch, Spec
from diffrl.data import OfflineDataset, load_dataset
from diffrl.presets import get_preset, preset_names
from diffrl.runlog import RunLogger

# evaluator(act_fn) -> record with at least "score"; act_fn(obs, index) -> actions, where index
# (e.g. the env step) selects the random draw, so an evaluation is reproducible
Evaluator = Callable[[Callable[[np.ndarray, int], np.ndarray]], dict[str, Any]]

RUN_FIELDS = ("reward_transform", "top_k", "eval_episodes", "batch_size")


class RunError(RuntimeError):
    """A run cannot start or resume (bad directory, bad configuration)."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run besides the agent's own hyperparameters."""

    algo: str = "dql"  # algorithm name (diffrl.agents.ALGORITHMS)
    dataset: str = ""  # dataset spec: d4rl:NAME, minari:ID, path.hdf5, path.npz, bandit:TASK
    env: str | None = None  # gymnasium id to evaluate in; default: the dataset's own env
    preset: str | None = None  # per-task preset name; default: the dataset's name if it has one
    steps: int = 1_000_000  # gradient steps
    seed: int = 0
    batch_size: int = 256
    eval_every: int = 50_000  # steps between evaluations (and checkpoints)
    eval_episodes: int = 10
    top_k: int = 1  # offline selection picks the evaluation with the top_k-th smallest bc loss
    reward_transform: str = "no"
    mode: str = "reference"  # reference | clean (agent quirks and the selection index)
    steps_per_call: int = 1000  # updates fused into one jitted lax.scan call
    agent: dict[str, Any] = dataclasses.field(default_factory=dict)  # agent Config overrides

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "steps_per_call"):
            if getattr(self, name) <= 0:
                raise RunError(f"{name} must be positive, got {getattr(self, name)}")
        if self.mode not in ("reference", "clean"):
            raise RunError(f"mode must be 'reference' or 'clean', got {self.mode!r}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_config(dataset_name: str | None, base: RunConfig, explicit: set[str]) -> RunConfig:
    """Apply the preset (named, or the dataset's own name when a preset exists) under `base`.

    Fields the user gave explicitly (`explicit`, names of RunConfig fields or agent fields) win
    over the preset.
    """
    name = base.preset or (dataset_name if dataset_name in preset_names(base.algo) else None)
    if name is None or name == "none":
        return dataclasses.replace(base, preset=None)
    preset = get_preset(base.algo, name)
    run_changes: dict[str, Any] = {"preset": name}
    agent = dict(base.agent)
    for key, value in preset.items():
        if key in explicit:
            continue
        if key == "epochs":
            if "steps" not in explicit:
                run_changes["steps"] = int(value) * 1000
        elif key in RUN_FIELDS:
            run_changes[key] = value
        else:
            agent[key] = value
    return dataclasses.replace(base, agent=agent, **run_changes)


def agent_config(cfg: RunConfig):
    """The agent's Config: its defaults, then the run's overrides, mode and schedule length."""
    module = get_agent(cfg.algo)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = set(cfg.agent) - fields
    if unknown:
        raise RunError(
            f"unknown {cfg.algo} setting(s) {sorted(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    derived = {"mode": cfg.mode, "total_steps": cfg.steps, "eval_every": cfg.eval_every}
    derived = {k: v for k, v in derived.items() if k in fields}
    try:
        return module.Config(**{**derived, **cfg.agent})
    except (TypeError, ValueError) as exc:
        raise RunError(f"invalid {cfg.algo} configuration: {exc}") from None


def chunk_length(cfg: RunConfig) -> int:
    """Largest scan length ≤ steps_per_call dividing the eval interval and the run length."""
    return math.gcd(cfg.steps_per_call, cfg.eval_every, cfg.steps)


# -- data -----------------------------------------------------------------------------------------
def prepare_dataset(cfg: RunConfig) -> OfflineDataset:
    """Load and transform the dataset named in `cfg` (raises DatasetError before training)."""
    return load_dataset(cfg.dataset, cfg.reward_transform, seed=cfg.seed)


def device_data(data: OfflineDataset) -> Batch:
    return Batch(
        observations=jnp.asarray(data.observations),
        actions=jnp.asarray(data.actions),
        rewards=jnp.asarray(data.rewards),
        next_observations=jnp.asarray(data.next_observations),
        not_done=jnp.asarray(1.0 - data.terminals.astype(np.float32)),
    )


def spec_of(data: OfflineDataset) -> Spec:
    if -data.action_low != data.action_high:
        raise RunError(
            f"{data.source}: the agents assume a symmetric action box [-m, m]; "
            f"found [{data.action_low}, {data.action_high}]"
        )
    return Spec(data.obs_dim, data.action_dim, float(data.action_high))


# -- jitted pieces ------------------------------------------------------------------------------
def make_chunk_fn(module, acfg, spec: Spec, batch_size: int, length: int):
    """jit(state, data, key) -> (state, metrics averaged over `length` updates)."""

    def chunk(state, data: Batch, key):
        n = data.observations.shape[0]

        def body(state, _):
            k_idx, k_upd = jax.random.split(jax.random.fold_in(key, state.step))
            idx = jax.random.randint(k_idx, (batch_size,), 0, n)
            batch = jax.tree.map(lambda x: x[idx], data)
            return module.update(acfg, spec, state, batch, k_upd)

        state, metrics = jax.lax.scan(body, state, None, length=length)
        # an agent reports NaN for a metric it did not compute at a step (e.g. DiffCPS's actor
        # losses between policy updates); the chunk's value is the mean over steps that have it
        return state, jax.tree.map(jnp.nanmean, metrics)

    return jax.jit(chunk, donate_argnums=0)


def make_act_fn(module, acfg, spec: Spec, **act_kwargs):
    """act(state, obs, key[, index]) -> actions, jitted.

    Only the parts of the state the policy uses cross the jit boundary (`module.policy_state`):
    handing over optimiser states too costs more than the denoiser itself at batch 1. The key is
    folded with `index` inside the compiled call, so a caller needs no extra dispatch per action.
    """

    def act(state, obs, key, index):
        return module.act(acfg, spec, state, obs, jax.random.fold_in(key, index), **act_kwargs)

    jitted = jax.jit(act)
    how = act_kwargs.get("selection") or getattr(acfg, "selection", "softmax")
    k = act_kwargs.get("candidates") or getattr(acfg, "candidates", None)
    if k is not None and k <= 1:
        how = "none"  # one candidate is the plain policy (the agents' act rule)
    prune = functools.partial(getattr(module, "policy_state", _whole_state), selection=how)
    last: list = [None, None]  # (state, pruned): evaluation calls act on one state many times

    def call(state, obs, key, index=0):
        if state is not last[0]:
            last[:] = [state, prune(state)]
        return jitted(last[1], obs, key, index)

    return call


def _whole_state(state, selection: str):
    """policy_state of an agent that defines none: acting may read anything."""
    return state


# -- the run ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    """A run directory and everything needed to continue it."""

    out: Path
    cfg: RunConfig
    data: OfflineDataset
    evaluator: Evaluator | None

    def __post_init__(self) -> None:
        self.module = get_agent(self.cfg.algo)
        self.acfg = agent_config(self.cfg)
        self.spec = spec_of(self.data)
        self.key = jax.random.PRNGKey(self.cfg.seed)
        self.train_key, self.eval_key, init_key = jax.random.split(self.key, 3)
        self.template = self.module.init(self.acfg, self.spec, init_key)
        self.length = chunk_length(self.cfg)
        self.act = make_act_fn(self.module, self.acfg, self.spec)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def checkpoint_path(self, step: int) -> Path:
        return self.ckpt_dir / f"step_{step:09d}.msgpack"

    def save(self, state, step: int) -> None:
        meta = {"step": step, "fingerprint": self.data.fingerprint(), "algo": self.cfg.algo}
        checkpoint.save(self.checkpoint_path(step), state, meta)

    def latest_checkpoint(self) -> tuple[Any, int] | None:
        paths = sorted(self.ckpt_dir.glob("step_*.msgpack"))
        if not paths:
            return None
        state, meta = checkpoint.load(paths[-1], self.template)
        if meta.get("fingerprint") != self.data.fingerprint():
            raise RunError(
                f"{paths[-1]}: checkpoint was made on different data "
                f"(fingerprint {meta.get('fingerprint')}, dataset now {self.data.fingerprint()})"
            )
        return state, int(meta["step"])

    def load_state(self, step: int):
        state, _ = checkpoint.load(self.checkpoint_path(step), self.template)
        return state

    def evaluate(self, state, step: int) -> dict[str, Any] | None:
        if self.evaluator is None:
            return None
        key = jax.random.fold_in(self.eval_key, step)

        def act_fn(obs: np.ndarray, index: int) -> np.ndarray:
            return np.asarray(self.act(state, jnp.asarray(obs), key, index))

        t0 = time.perf_counter()
        result = self.evaluator(act_fn)
        result["eval_seconds"] = time.perf_counter() - t0  # whatever the evaluator, its cost
        return result


def new_run(
    cfg: RunConfig, out: Path, evaluator_factory=None, data: OfflineDataset | None = None
) -> Run:
    """Create `out` (refusing a directory that already holds a run) and write config.json."""
    out = Path(out)
    if (out / "config.json").exists():
        raise RunError(
            f"{out} already holds a run (config.json exists); continue it with "
            f"`diffrl train --resume {out}` or choose another --out"
        )
    data = data if data is not None else prepare_dataset(cfg)
    run = Run(out, cfg, data, None)
    run.evaluator = (evaluator_factory or default_evaluator)(run)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "run": cfg.to_json(),
        "agent": dataclasses.asdict(run.acfg),
        "dataset": data.summary(),
        "fingerprint": data.fingerprint(),
        "evaluation": getattr(run.evaluator, "describe", lambda: None)(),
        "jax": {"version": jax.__version__, "backend": jax.default_backend()},
    }
    fileio.write_json_atomic(out / "config.json", record)
    return run


def open_run(out: Path, evaluator_factory=None) -> Run:
    """Re-open an existing run directory from its config.json."""
    out = Path(out)
    path = out / "config.json"
    if not path.exists():
        raise RunError(f"{out}: not a run directory (no config.json)")
    record = json.loads(path.read_text())
    cfg = RunConfig(**record["run"])
    data = prepare_dataset(cfg)
    run = Run(out, cfg, data, None)
    run.evaluator = (evaluator_factory or default_evaluator)(run)
    return run


def default_evaluator(run: Run) -> Evaluator | None:
    """Gymnasium rollouts for env datasets, bandit metrics for bandit tasks."""
    if run.cfg.dataset.startswith("bandit:"):
        from diffrl.bandits.evaluate import BanditEvaluator

        return BanditEvaluator(run.cfg.dataset.split(":", 1)[1], run.data)
    from diffrl.evaluate import GymEvaluator

    return GymEvaluator.for_run(run)


def execute(run: Run, progress: bool = True) -> dict[str, Any]:
    """Train from the latest checkpoint (or from scratch) to `cfg.steps`; return the summary."""
    cfg = run.cfg
    resumed = run.latest_checkpoint()
    state, step = resumed if resumed is not None else (jax.tree.map(jnp.copy, run.template), 0)
    if resumed is None and hasattr(run.module, "with_data"):
        # optional hook: statistics of the data the agent keeps in its state (TD3+BC's state
        # normalisation); checkpoints carry them, so a resumed run does not recompute them
        state = run.module.with_data(run.acfg, state, run.data.observations)
    logger = RunLogger(run.out, start_step=step, total=cfg.steps, progress=progress)
    chunk = make_chunk_fn(run.module, run.acfg, run.spec, cfg.batch_size, run.length)
    data = device_data(run.data)
    if step == 0:
        run.save(state, 0)
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            state, metrics = chunk(state, data, run.train_key)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            step += run.length
            logger.train(step, metrics, run.length / (time.perf_counter() - t0))
            if step % cfg.eval_every == 0 or step == cfg.steps:
                result = run.evaluate(state, step)
                logger.eval(step, result)
                run.save(state, step)
    finally:
        logger.close()
    summary = selection.summarize(run.out, cfg, run.module, run.acfg)
    fileio.write_json_atomic(run.out / "summary.json", summary)
    plots.plot_run(run.out)  # curves.png (+ constraint.png for DiffCPS)
    return summary
