"""The training loop: scan-fused chunks of updates, evaluation, checkpoints, logs, selection.

Nothing here is algorithm-specific: the loop uses an agent only through `agents.api.Agent`.
Batches are sampled on the device inside `lax.scan`; the key of step i is `fold_in(key, i)`, so a
run resumed from a checkpoint draws exactly the batches and noise an uninterrupted run draws.
The loop keeps its records and hands them to the summary and the figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import fileio, plots, selection
from diffrl.agents.api import Agent, Batch, Spec
from diffrl.data import OfflineDataset
from diffrl.errors import DivergedError, Interrupted
from diffrl.run import lock
from diffrl.run.directory import Run
from diffrl.run.settings import RunConfig
from diffrl.run.stopping import deferred_stop
from diffrl.runlog import RunLogger


def chunk_length(cfg: RunConfig, start: int = 0) -> int:
    """Largest scan length ≤ steps_per_call dividing the eval interval, the run length and the
    step it starts from (a run extended past its old end starts there)."""
    return math.gcd(cfg.steps_per_call, cfg.eval_every, cfg.steps, start)


def device_data(data: OfflineDataset) -> Batch:
    return Batch(
        observations=jnp.asarray(data.observations),
        actions=jnp.asarray(data.actions),
        rewards=jnp.asarray(data.rewards),
        next_observations=jnp.asarray(data.next_observations),
        not_done=jnp.asarray(1.0 - data.terminals.astype(np.float32)),
    )


def make_chunk_fn(
    agent: Agent, acfg: Any, spec: Spec, batch_size: int, length: int
) -> Callable[[Any, Batch, jax.Array], tuple[Any, dict]]:
    """jit(state, data, key) -> (state, metrics averaged over `length` updates)."""
    return jax.jit(chunk_body(agent, acfg, spec, batch_size, length), donate_argnums=0)


def chunk_body(
    agent: Agent, acfg: Any, spec: Spec, batch_size: int, length: int
) -> Callable[[Any, Batch, jax.Array], tuple[Any, dict]]:
    """The un-jitted chunk (`length` scanned updates), to jit alone or vmapped over seeds."""

    def chunk(state: Any, data: Batch, key: jax.Array) -> tuple[Any, dict]:
        n = data.observations.shape[0]

        def body(state: Any, _: None) -> tuple[Any, dict]:
            k_idx, k_upd = jax.random.split(jax.random.fold_in(key, state.step))
            idx = jax.random.randint(k_idx, (batch_size,), 0, n)
            batch = jax.tree.map(lambda x: x[idx], data)
            return agent.update(acfg, spec, state, batch, k_upd)

        state, metrics = jax.lax.scan(body, state, None, length=length)
        # an agent reports NaN for a metric it did not compute at a step (e.g. DiffCPS's actor
        # losses between policy updates); the chunk's value is the mean over steps that have it
        return state, jax.tree.map(jnp.nanmean, metrics)

    return chunk


def execute(run: Run, progress: bool = True) -> dict[str, Any]:
    """Train from the latest good checkpoint (or from scratch) to `cfg.steps`; return the summary.

    The run directory's lock is released at the end, however the run ends. Raises Interrupted on
    Ctrl-C (and SIGTERM, which the CLI turns into one) and DivergedError on a non-finite value.
    """
    if run.data is None:
        raise ValueError(f"{run.out}: opened without its training data; it cannot train")
    try:
        return _train(run, progress)
    finally:
        lock.release(run.out)


def _train(run: Run, progress: bool) -> dict[str, Any]:
    cfg = run.cfg
    resumed = run.latest_checkpoint()
    state, step = resumed if resumed is not None else (run.initial_state(), 0)
    length = chunk_length(cfg, step)
    chunk = make_chunk_fn(run.agent, run.acfg, run.spec, cfg.batch_size, length)
    data = device_data(run.data)
    saved = step
    with deferred_stop() as stop:  # a signal stops the loop between chunks (run/stopping.py)
        logger = RunLogger(run.out, start_step=step, total=cfg.steps, progress=progress)
        try:
            if step == 0:
                run.save(state, 0)
            elif is_eval_step(cfg, step) and not was_evaluated(logger.records, step):
                logger.eval(step, run.evaluate(state, step))  # killed between checkpoint and eval
            while step < cfg.steps:
                stop.check()
                t0 = time.perf_counter()
                state, metrics = chunk(state, data, run.train_key)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                step += length
                _check_finite(run, state, metrics, step, saved)
                logger.train(step, metrics, length / (time.perf_counter() - t0))
                if is_eval_step(cfg, step):
                    run.save(state, step)  # before evaluating: a failing evaluation loses nothing
                    saved = step
                    logger.eval(step, run.evaluate(state, step))
        except KeyboardInterrupt:
            raise Interrupted(str(run.out), step, saved) from None
        finally:
            logger.close()
    return finish(run, logger.records)


def is_eval_step(cfg: RunConfig, step: int) -> bool:
    return step % cfg.eval_every == 0 or step == cfg.steps


def was_evaluated(records: list[dict[str, Any]], step: int) -> bool:
    return any(r.get("kind") == "eval" and r.get("step") == step for r in records)


@jax.jit
def all_finite(state: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def not_finite(metrics: dict[str, float], params_finite: bool) -> str | None:
    """What a chunk left not finite, in words; None when nothing. (A NaN metric alone means "not
    computed in this chunk"; a real NaN loss makes the parameters NaN.)"""
    bad = [k for k, v in metrics.items() if math.isinf(v)]
    if bad:
        return f"metric {bad[0]} = {metrics[bad[0]]}"
    if params_finite:
        return None
    nan = [k for k, v in metrics.items() if math.isnan(v)]
    return "the parameters" + (f" (NaN metrics: {', '.join(nan)})" if nan else "")


def _check_finite(run: Run, state: Any, metrics: dict[str, float], step: int, saved: int) -> None:
    """Stop at the first chunk with an infinite metric or a non-finite parameter."""
    what = not_finite(metrics, bool(all_finite(state)))
    if what is None:
        return
    raise DivergedError(
        f"{run.out}: training diverged by step {step}: {what} is not finite; the last good "
        f"checkpoint is step {saved} ({run.checkpoint_path(saved).name}); lower the learning "
        "rates or check the rewards' scale"
    )


def finish(run: Run, records: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json and the figures of a finished run, from the loop's records."""
    metric = run.agent.selection_metric
    summary = selection.summarize(records, run.cfg, metric)
    fileio.write_json_atomic(run.out / "summary.json", summary)
    plots.plot_run(run.out, records, bc_metric=metric)  # curves.png (+ constraint.png for DiffCPS)
    return summary
