"""Many seeds in one program: runs that differ only in their seed, trained by one jitted chunk
vmapped over the seed axis.

Each seed keeps its own ordinary run directory (config.json, checkpoints, metrics, summary,
curves) and its own lock; only the computation is shared. On a GPU a step of these small
networks is bound by kernel launches, so N seeds cost little more than one. The seeds advance
together: a group resumes from the newest step every seed has a checkpoint of (a seed that had
gone further retrains from there, as a single run resumed from that checkpoint would).

Data: one copy when every seed trains on the same transitions (the usual case: the seed only
changes initialisation and sampling), stacked along the seed axis otherwise (bandit tasks
generate their data from the seed).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl.acting import policy_action
from diffrl.errors import DivergedError, Interrupted
from diffrl.run import lock
from diffrl.run.directory import Run, RunError
from diffrl.run.loop import (
    all_finite,
    chunk_body,
    chunk_length,
    device_data,
    finish,
    is_eval_step,
    not_finite,
    was_evaluated,
)
from diffrl.run.stopping import deferred_stop
from diffrl.runlog import RunLogger


def make_group_chunk_fn(
    agent: Any, acfg: Any, spec: Any, batch_size: int, length: int, data_axis: int | None = None
) -> Any:
    """jit(states, data, keys) -> (states, metrics), the loop's chunk vmapped over a leading
    seed axis of states and keys (and of data when `data_axis` is 0)."""
    body = chunk_body(agent, acfg, spec, batch_size, length)
    return jax.jit(jax.vmap(body, in_axes=(0, data_axis, 0)), donate_argnums=0)


def check_group(runs: list[Run]) -> None:
    """The runs may share one program: same settings but for the seed, distinct seeds."""
    if not runs:
        raise RunError("a group of seeds needs at least one run")
    base = runs[0].cfg.to_json() | {"seed": None}
    for r in runs[1:]:
        theirs = r.cfg.to_json() | {"seed": None}
        if theirs != base:
            diff = sorted(k for k in base if base[k] != theirs.get(k))
            raise RunError(
                f"{r.out}: differs from {runs[0].out} in {', '.join(diff)}, not only the seed"
            )
    seeds = [r.cfg.seed for r in runs]
    if len(set(seeds)) != len(seeds):
        raise RunError(f"seeds must be distinct, found {seeds}")


def execute_many(runs: list[Run], progress: bool = True) -> list[dict[str, Any]]:
    """Train every run to `cfg.steps` as one vmapped program; the summaries, in run order.
    Every run's lock is released at the end, however it ends."""
    try:
        check_group(runs)
        if any(r.data is None for r in runs):
            raise ValueError("every run of a group needs its training data")
        return _train_many(runs, progress)
    finally:
        for r in runs:
            lock.release(r.out)


def common_start(runs: list[Run]) -> tuple[list[Any], int]:
    """Each run's state at the newest step all of them have a good checkpoint of (0: fresh)."""
    latest = [r.latest_checkpoint() for r in runs]
    if any(x is None for x in latest):
        return [r.initial_state() for r in runs], 0
    step = min(s for _, s in latest)
    states = [
        st if s == step else r.load_state(step) for r, (st, s) in zip(runs, latest, strict=True)
    ]
    return states, step


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def shared_data(runs: list[Run]) -> tuple[Any, int | None]:
    """The device data and its vmap axis: one copy (None) if every run has the same data."""
    if len({r.fingerprint for r in runs}) == 1:
        return device_data(runs[0].data), None
    sizes = {r.data.size for r in runs}
    if len(sizes) != 1:
        raise RunError(f"the seeds' datasets differ in size ({sorted(sizes)}); train them apart")
    return stack([device_data(r.data) for r in runs]), 0


def _train_many(runs: list[Run], progress: bool) -> list[dict[str, Any]]:
    cfg, first = runs[0].cfg, runs[0]
    states, step = common_start(runs)
    length = chunk_length(cfg, step)
    data, data_axis = shared_data(runs)
    chunk = make_group_chunk_fn(
        first.agent, first.acfg, first.spec, cfg.batch_size, length, data_axis
    )
    keys = jnp.stack([r.train_key for r in runs])
    group_act = make_group_act(first)
    state, saved = stack(states), step
    with deferred_stop() as stop:  # a signal stops the loop between chunks (run/stopping.py)
        loggers = [RunLogger(r.out, start_step=step, total=cfg.steps, progress=progress and i == 0)
                   for i, r in enumerate(runs)]  # fmt: skip
        try:
            _catch_up(runs, loggers, state, step)
            while step < cfg.steps:
                stop.check()
                t0 = time.perf_counter()
                state, metrics = chunk(state, data, keys)
                metrics = jax.device_get(metrics)
                step += length
                rate = length / (time.perf_counter() - t0)  # per seed; the group does N× more
                per_seed = [{k: float(v[i]) for k, v in metrics.items()} for i in range(len(runs))]
                _check_finite_many(runs, state, per_seed, step, saved)
                for logger, seed_metrics in zip(loggers, per_seed, strict=True):
                    logger.train(step, seed_metrics, rate)
                if is_eval_step(cfg, step):
                    _save_and_evaluate(runs, loggers, state, step, group_act)
                    saved = step
        except KeyboardInterrupt:
            raise Interrupted(str(first.out.parent), step, saved) from None
        finally:
            for logger in loggers:
                logger.close()
    return [finish(r, logger.records) for r, logger in zip(runs, loggers, strict=True)]


def _catch_up(runs: list[Run], loggers: list[RunLogger], state: Any, step: int) -> None:
    """Step 0's checkpoints, or the evaluation of `step` if a kill came between its
    checkpoint and its evaluation."""
    for i, (r, logger) in enumerate(zip(runs, loggers, strict=True)):
        if step == 0:
            r.save(unstack(state, i), 0)
        elif is_eval_step(r.cfg, step) and not was_evaluated(logger.records, step):
            logger.eval(step, r.evaluate(unstack(state, i), step))


def _save_and_evaluate(
    runs: list[Run], loggers: list[RunLogger], state: Any, step: int, group_act: Any
) -> None:
    states = [unstack(state, i) for i in range(len(runs))]
    for r, s in zip(runs, states, strict=True):
        r.save(s, step)  # every seed's checkpoint before any evaluation: a failure loses nothing
    records = evaluate_together(runs, states, step, group_act)
    if records is None:  # evaluators that cannot share environments: one seed at a time
        records = [r.evaluate(s, step) for r, s in zip(runs, states, strict=True)]
    for logger, record in zip(loggers, records, strict=True):
        logger.eval(step, record)


def make_group_act(run: Run) -> Any:
    """jit(policy states, obs (N, B, S), eval keys (N,), index) -> actions (N, B, A): the run's
    action choice vmapped over seeds, each seed's key folded with the index as `Run.act` does."""
    act = policy_action(run.agent, run.acfg, run.spec, run.choice)

    def one(state: Any, obs: jax.Array, key: jax.Array, index: jax.Array) -> jax.Array:
        return act(state, obs, jax.random.fold_in(key, index))

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def evaluate_together(
    runs: list[Run], states: list[Any], step: int, group_act: Any
) -> list[dict[str, Any]] | None:
    """Every seed's evaluation from one vectorised set of environments and one vmapped policy
    call per env step, when the evaluator can (`evaluate_group`, e.g. GymEvaluator); None
    otherwise. Each record's `eval_seconds` is its share of the group's evaluation time."""
    evaluators = [r.evaluator for r in runs]
    together = getattr(evaluators[0], "evaluate_group", None)  # optional: see Evaluator
    if together is None or any(type(e) is not type(evaluators[0]) for e in evaluators):
        return None
    ranked = runs[0].choice.ranked
    pruned = stack([r.agent.policy_state(s, ranked) for r, s in zip(runs, states, strict=True)])
    keys = jnp.stack([jax.random.fold_in(r.eval_key, step) for r in runs])

    def act_fn(obs: np.ndarray, index: int) -> np.ndarray:
        grouped = jnp.asarray(obs).reshape(len(runs), -1, obs.shape[-1])
        return np.asarray(group_act(pruned, grouped, keys, index)).reshape(obs.shape[0], -1)

    t0 = time.perf_counter()
    records = together(evaluators, act_fn)
    if records is None:
        return None
    share = (time.perf_counter() - t0) / len(runs)
    return [{**record, "eval_seconds": share} for record in records]


_finite_per_seed = jax.jit(jax.vmap(all_finite))  # built once: it runs after every chunk


def _check_finite_many(
    runs: list[Run], state: Any, per_seed: list[dict[str, float]], step: int, saved: int
) -> None:
    """Stop the group at the first chunk where any seed has an infinite metric or a non-finite
    parameter, naming that seed (its run directory) and the last good checkpoint."""
    finite = np.asarray(_finite_per_seed(state))
    for r, metrics, params_finite in zip(runs, per_seed, finite, strict=True):
        what = not_finite(metrics, bool(params_finite))
        if what is not None:
            raise DivergedError(
                f"{r.out}: training diverged by step {step}: {what} is not finite; the last good "
                f"checkpoint of every seed is step {saved}; lower the learning rates or check the "
                "rewards' scale"
            )
