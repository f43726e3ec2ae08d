"""Helpers shared by the tests: tiny runs, killed and resumed runs, batches, tree comparisons."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import launch
from diffrl.agents.api import Batch
from diffrl.run import Run, RunConfig, execute, new_run
from diffrl.runlog import TIMING_FIELDS, read_records


def tiny_bandit_run(algo: str, agent_settings: dict, steps: int = 40, **changes) -> RunConfig:
    """A short run on the `corners` bandit: evaluations every 20 steps, chunks of 10; `changes`
    replace any field (`agent` too)."""
    base = dict(algo=algo, dataset="bandit:corners", steps=steps, eval_every=20, batch_size=32,
                steps_per_call=10, agent=dict(agent_settings))  # fmt: skip
    return RunConfig(**{**base, **changes})


def crash_at_second_eval(inner):
    """An evaluator that raises on its second call (a crash mid-run)."""
    calls = []

    def evaluate(act_fn):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        return inner(act_fn)

    return evaluate


def records_without_timing(out: Path) -> list[dict]:
    """metrics.jsonl of a run without the fields that depend on the machine's speed."""
    return [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        for r in read_records(Path(out) / "metrics.jsonl")
    ]


def crash_and_resume(cfg: RunConfig, out: Path) -> tuple[Run, dict, int]:
    """Start a run in `out` that is killed at its second evaluation, then resume it to the end.

    Returns the resumed run, its summary and the last step logged before the crash (the train
    records up to the second evaluation were written, so resume must truncate the log).
    """
    data = launch.training_data(cfg)
    run = new_run(cfg, out, data, crash_at_second_eval(launch.evaluator_for(cfg, data)))
    try:
        execute(run, progress=False)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the run was expected to be killed at its second evaluation")
    crashed_at = max(r["step"] for r in read_records(Path(out) / "metrics.jsonl"))
    resumed = launch.resume(out)
    return resumed, execute(resumed, progress=False), crashed_at


def random_batch(spec, seed: int, b: int, action_scale: float = 0.5) -> Batch:
    """A batch of random transitions built with numpy (no per-op compilation)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Batch(
        observations=jnp.asarray(rng.normal(size=(b, spec.obs_dim)), f32),
        actions=jnp.asarray(
            rng.uniform(-action_scale, action_scale, size=(b, spec.action_dim)), f32
        ),
        rewards=jnp.asarray(rng.normal(size=b), f32),
        next_observations=jnp.asarray(rng.normal(size=(b, spec.obs_dim)), f32),
        not_done=jnp.asarray(rng.uniform(size=b) > 0.3, f32),
    )


def assert_png_has_content(
    path: Path, min_width: int, min_height: int, min_colours: int = 8, min_ink: float = 0.01
) -> tuple[int, int]:
    """Assert the PNG at `path` is at least `min_width` x `min_height` pixels and not blank: at
    least `min_colours` distinct colours and a share `min_ink` of pixels off the background (the
    most common colour). Returns (width, height), so a test can also pin the exact size."""
    import matplotlib.image as mpimg  # here: most users of this module never open an image

    img = mpimg.imread(str(path))  # PNG: floats in [0, 1], (height, width, RGB or RGBA)
    assert img.ndim == 3, f"{path}: expected a colour image, got shape {img.shape}"
    height, width = img.shape[:2]
    assert width >= min_width and height >= min_height, (
        f"{path}: {width}x{height} pixels, expected at least {min_width}x{min_height}"
    )
    rgb = np.round(img[..., :3] * 255).astype(np.int64)
    packed = (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()  # one int per colour
    colours, counts = np.unique(packed, return_counts=True)
    ink = 1.0 - counts.max() / packed.size
    assert len(colours) >= min_colours, f"{path}: only {len(colours)} distinct colours"
    assert ink >= min_ink, f"{path}: {ink:.2%} of pixels differ from the background"
    return width, height


BENCH_TINY = {"hidden": 16, "pretrain_steps": 20, "selection": "none"}  # DTQL in seconds


def tiny_bench_jobs(datasets: list[str], seeds: tuple[int, ...] = (0,)) -> list:
    """Bench jobs of a tiny DTQL (40 steps, evaluated at 20 and 40) on `datasets`."""
    from diffrl import bench

    return bench.make_jobs(
        ["dtql"], datasets, list(seeds), steps=40, eval_every=20, sets=BENCH_TINY
    )


def tree_changed(a, b) -> bool:
    """Every leaf of `b` differs from the same leaf of `a`."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def tree_equal(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def tree_close(a, b, **tol) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.allclose(np.asarray(x), np.asarray(y), **tol) for x, y in pairs)


def init_and_two_updates(agent, config, spec, batch: Batch):
    """init, then two updates (so that TD3+BC's delayed actor step has run), in one program:
    the initial state and (state, metrics) after one and after two updates."""

    def run(key):
        s0 = agent.init(config, spec, key)

        def body(s, k):
            s, m = agent.update(config, spec, s, batch, k)
            return s, (s, m)

        _, (states, metrics) = jax.lax.scan(body, s0, jax.random.split(key, 2))
        return s0, states, metrics

    s0, states, metrics = jax.jit(run)(jax.random.PRNGKey(0))
    pick = [jax.tree.map(lambda x, i=i: x[i], (states, metrics)) for i in (0, 1)]
    return s0, pick[0], pick[1]


def assert_trains(trained, fields: tuple[str, ...], nan_at_first_step: tuple[str, ...] = ()):
    """After two updates every leaf of `fields` moved and every metric is a finite scalar
    (after the first update, metrics in `nan_at_first_step` may be NaN: not computed yet)."""
    s0, (s1, m1), (s2, m2) = trained
    assert int(s1.step) == 1 and int(s2.step) == 2
    assert jax.tree.structure(s2) == jax.tree.structure(s0)
    for field in fields:
        assert tree_changed(getattr(s0, field), getattr(s2, field)), field
    for key, value in m2.items():
        assert np.shape(value) == () and np.isfinite(float(value)), key
    for key, value in m1.items():
        assert key in nan_at_first_step or np.isfinite(float(value)), key


def assert_registered(agent, name: str, with_data: bool, q_value: bool) -> None:
    """`name` resolves to `agent`, which ranks by its BC loss and has the optional hooks given."""
    from diffrl.agents import get_agent

    assert get_agent(name) is agent and agent.selection_metric == "actor/bc_loss"
    assert (agent.with_data is not None) is with_data and (agent.q_value is not None) is q_value
