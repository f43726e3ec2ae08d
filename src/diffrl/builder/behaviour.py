"""Online SAC training of the behaviour agent: resumable, logged, evaluated, snapshotted.

Work folder layout (one per env, seed and SAC budget):
  config.json            what was asked (a rerun with other settings is refused)
  state.msgpack          the SAC state + loop position (step, episode, numpy RNG), atomic
  replay/rows-*.npz      the replay buffer in append-only chunks (see replay.py)
  snapshots/actor-*.msgpack   the actor at every evaluation (to pick `medium` afterwards)
  metrics.jsonl, tb/     training and evaluation records (RunLogger)
  learning_curve.png     evaluation return vs step

Exact resume: checkpoints are taken only at episode ends, and every episode starts from
`env.reset(seed=<seed, episode index>)`, so a resumed run needs no env state: it continues
bit for bit as the uninterrupted run would (on the same machine).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import checkpoint, fileio
from diffrl.builder import sac
from diffrl.builder.envs import BuildError, EnvInfo, make_env
from diffrl.builder.replay import Replay
from diffrl.evaluate import EnvSpec, rollout
from diffrl.runlog import RunLogger, read_records
from diffrl.versions import software_versions


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 300_000  # env steps of SAC (one gradient update per step after warm-up)
    random_steps: int = 10_000  # uniform-random warm-up steps before the first update
    eval_every: int = 10_000  # env steps between evaluations (and actor snapshots)
    eval_episodes: int = 5  # episodes of the deterministic policy per evaluation
    log_every: int = 1_000  # env steps between training records / progress-bar updates
    seed: int = 0
    sac: sac.Config = sac.Config()

    def check(self) -> None:
        if self.steps < 1:
            raise BuildError(f"--sac-steps: expected at least 1 step, found {self.steps}.")
        for name in ("random_steps", "eval_every", "eval_episodes", "log_every"):
            if getattr(self, name) < (0 if name == "random_steps" else 1):
                raise BuildError(f"{name}: expected a positive number, found {getattr(self, name)}")


def derived_seed(seed: int, *path: int) -> int:
    """A seed in [0, 2^30) for one use of the build seed (train episode i: path (0, i);
    evaluations: (1,); collections and reference rollouts: see recipe.py)."""
    return int(np.random.SeedSequence(seed, spawn_key=path).generate_state(1)[0]) % 2**30


def action_scale(info: EnvInfo) -> sac.ActionScale:
    half = (info.action_high - info.action_low) / 2.0
    center = (info.action_high + info.action_low) / 2.0
    return sac.ActionScale(
        center=jnp.full((info.action_dim,), center, jnp.float32),
        half=jnp.full((info.action_dim,), half, jnp.float32),
    )


@dataclasses.dataclass
class Loop:
    """Everything that changes while training; `meta()` is what a checkpoint stores besides the
    SAC state and the replay rows."""

    state: sac.State
    replay: Replay
    rng: np.random.Generator
    step: int = 0
    episode: int = 0

    def meta(self) -> dict[str, Any]:
        return {"step": self.step, "episode": self.episode, "rng": self.rng.bit_generator.state}


class Trainer:
    def __init__(self, info: EnvInfo, cfg: TrainConfig, work: Path, progress: bool = True) -> None:
        cfg.check()
        self.info, self.cfg, self.work, self.progress = info, cfg, Path(work), progress
        self.scale = action_scale(info)
        self.target_entropy = sac.target_entropy_of(cfg.sac, info.action_dim)
        self.eval_spec = EnvSpec(info.env_id, dict(info.env_kwargs))

    # -- folder ---------------------------------------------------------------------------------
    def config_record(self) -> dict[str, Any]:
        return {
            "env_id": self.info.env_id,
            "env_kwargs": self.info.env_kwargs,
            "train": dataclasses.asdict(self.cfg),
        }

    def _claim_folder(self) -> None:
        want = self.config_record()
        have = fileio.claim_record(self.work / "config.json", want)
        if have is not None:
            raise BuildError(
                f"{self.work}: expected a behaviour run with settings {want}, found one with "
                f"{have}; rerun with the same settings to continue it, or delete the folder."
            )

    def _check_software(self) -> None:
        """Warn when a run continues under other software or vector extensions than it began
        with: it goes on (hours of training are not thrown away), but its trajectory is no
        longer the one an uninterrupted run on the first machine would follow."""
        now = software_versions()
        began = fileio.claim_record(self.work / "software.json", now)
        if began is None:
            return
        changed = {k: (began.get(k), v) for k, v in now.items() if began.get(k) != v}
        listed = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(changed.items()))
        warnings.warn(
            f"{self.work}: this behaviour run began with other software or CPU ({listed}); it "
            f"continues, but its results will differ from an uninterrupted run's on the first "
            f"machine (docs/datasets.md, 'Reproducing a build')",
            stacklevel=2,
        )

    def _fresh(self) -> Loop:
        key = jax.random.PRNGKey(self.cfg.seed)
        state = sac.init(self.cfg.sac, self.info.obs_dim, self.info.action_dim, key)
        replay = Replay(self.cfg.steps, self.info.obs_dim, self.info.action_dim)
        return Loop(state, replay, np.random.default_rng([self.cfg.seed, 1]))

    def _restore(self) -> Loop:
        loop = self._fresh()
        path = self.work / "state.msgpack"
        if not path.exists():
            for chunk in (self.work / "replay").glob("rows-*.npz"):
                chunk.unlink()  # rows of a run interrupted before its first checkpoint
            return loop
        loop.state, meta = checkpoint.load(path, loop.state)
        loop.step, loop.episode = int(meta["step"]), int(meta["episode"])
        loop.rng.bit_generator.state = meta["rng"]
        loop.replay.load_chunks(self.work / "replay", loop.step)
        return loop

    def _save(self, loop: Loop) -> None:
        # rows first: a crash between the two leaves chunks past the checkpoint, which
        # `load_chunks` discards; the other order could leave a checkpoint without its rows
        loop.replay.save_chunk(self.work / "replay", self._saved_rows())
        checkpoint.save(self.work / "state.msgpack", loop.state, loop.meta())

    def _saved_rows(self) -> int:
        ends = [int(p.stem.split("-")[2]) for p in (self.work / "replay").glob("rows-*.npz")]
        return max(ends, default=0)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, actor: Any) -> dict[str, Any]:
        """Deterministic policy, `eval_episodes` episodes from fixed seeds (same at every eval)."""

        def policy(obs: np.ndarray, t: int) -> np.ndarray:
            return np.asarray(sac.jit_deterministic_action(actor, obs, self.scale))

        return rollout(
            self.eval_spec, policy, self.cfg.eval_episodes, derived_seed(self.cfg.seed, 1)
        )

    def _evaluate_and_snapshot(self, loop: Loop, logger: RunLogger) -> None:
        t0 = time.perf_counter()
        result = self.evaluate(loop.state.actor)
        record = {k: result[k] for k in ("return_mean", "return_std", "length_mean", "returns")}
        record["eval_seconds"] = time.perf_counter() - t0
        meta = {"step": loop.step, **{k: record[k] for k in ("return_mean", "return_std")}}
        checkpoint.save(snapshot_path(self.work, loop.step), loop.state.actor, meta)
        logger.eval(loop.step, record)
        if logger.bar is not None:
            logger.bar.write(
                f"step {loop.step}: eval return {record['return_mean']:.1f} "
                f"± {record['return_std']:.1f} (length {record['length_mean']:.0f})"
            )

    # -- the loop -------------------------------------------------------------------------------
    def run(self, _interrupt_at: int | None = None) -> sac.State:
        """Train to `cfg.steps` (continuing from the last checkpoint) and return the SAC state.

        `_interrupt_at` (tests only) raises KeyboardInterrupt when that env step is reached.
        """
        self.work.mkdir(parents=True, exist_ok=True)
        self._claim_folder()
        self._check_software()
        loop = self._restore()
        if loop.step >= self.cfg.steps:
            return loop.state
        logger = RunLogger(self.work, loop.step, self.cfg.steps, progress=self.progress)
        self._metrics: list[dict] = []  # device metrics since the last training record
        self._last_log = (loop.step, time.perf_counter())
        env = make_env(self.info.env_id, self.info.env_kwargs)
        try:
            while loop.step < self.cfg.steps:
                evaluated = self._episode(env, loop, logger, _interrupt_at)
                if evaluated or loop.step >= self.cfg.steps:
                    self._save(loop)
                    plot_learning_curve(self.work)  # a long run shows its curve as it goes
        finally:
            env.close()
            logger.close()
        return loop.state

    def _episode(self, env, loop: Loop, logger: RunLogger, interrupt_at: int | None) -> bool:
        """Play one training episode (or up to the step budget); True if an evaluation ran."""
        cfg = self.cfg
        obs, _ = env.reset(seed=derived_seed(cfg.seed, 0, loop.episode))
        action, evaluated = None, False
        metrics = self._metrics
        while True:
            if loop.step == interrupt_at:
                raise KeyboardInterrupt(f"test interruption at step {loop.step}")
            if loop.step < cfg.random_steps:
                action = loop.rng.uniform(
                    self.info.action_low, self.info.action_high, self.info.action_dim
                ).astype(np.float32)
            elif action is None:  # first policy action of this episode
                key = jax.random.fold_in(loop.state.key, 2)
                action = np.asarray(
                    sac.jit_stochastic_action(loop.state.actor, obs, key, self.scale)
                )
            next_obs, reward, term, trunc, _ = env.step(action)
            loop.replay.add(obs, action, reward, next_obs, bool(term), bool(trunc))
            loop.step += 1
            action = self._learn(loop, next_obs, metrics)
            if loop.step % cfg.log_every == 0:
                self._log(loop, logger, metrics)
            if loop.step % cfg.eval_every == 0 or loop.step == cfg.steps:
                self._evaluate_and_snapshot(loop, logger)
                evaluated = True
            if term or trunc or loop.step >= cfg.steps:
                break
            obs = next_obs
        loop.episode += 1
        return evaluated

    def _learn(self, loop: Loop, next_obs: np.ndarray, metrics: list) -> np.ndarray | None:
        """One update once warm-up is over; returns the sampled action for `next_obs`."""
        if loop.step < self.cfg.random_steps:
            return None
        batch = loop.replay.sample(loop.rng, self.cfg.sac.batch_size)
        loop.state, action, m = sac.learn_and_act(
            self.cfg.sac,
            loop.state,
            batch,
            jnp.asarray(next_obs, jnp.float32),
            self.scale,
            self.target_entropy,
        )
        metrics.append(m)
        return np.asarray(action)

    def _log(self, loop: Loop, logger: RunLogger, metrics: list) -> None:
        """A training record: mean metrics and env steps/s (updates and evaluations included)."""
        now = time.perf_counter()
        rate = (loop.step - self._last_log[0]) / max(now - self._last_log[1], 1e-9)
        self._last_log = (loop.step, now)
        if metrics:
            stacked = jax.device_get(jax.tree.map(lambda *x: jnp.stack(x).mean(), *metrics))
            means = {k: float(v) for k, v in stacked.items()}
            metrics.clear()
        else:
            means = {}
        logger.train(loop.step, means, rate)


# -- results of a finished run ------------------------------------------------------------------
def snapshot_path(work: Path, step: int) -> Path:
    return Path(work) / "snapshots" / f"actor-{step:09d}.msgpack"


def evaluations(work: Path) -> list[dict[str, Any]]:
    """The evaluation records of a run, in step order (one per snapshot)."""
    return [r for r in read_records(Path(work) / "metrics.jsonl") if r.get("kind") == "eval"]


def load_snapshot(work: Path, step: int, template: Any) -> Any:
    actor, _ = checkpoint.load(snapshot_path(work, step), template)
    return actor


def load_replay(work: Path, info: EnvInfo, upto: int) -> Replay:
    replay = Replay(upto, info.obs_dim, info.action_dim)
    _load_prefix(replay, Path(work) / "replay", upto)
    return replay


def _load_prefix(replay: Replay, folder: Path, upto: int) -> None:
    """Rows [0, upto) from the chunk files (read-only: nothing is deleted)."""
    for path in sorted(folder.glob("rows-*.npz")):
        start, end = (int(x) for x in path.stem.split("-")[1:])
        if start >= upto:
            break
        take = min(end, upto) - start
        with np.load(path) as chunk:
            for key in replay.data:
                replay.data[key][start : start + take] = chunk[key][:take]
        replay.size = start + take
    if replay.size != upto:
        raise BuildError(f"{folder}: expected {upto} replay rows, found {replay.size}")


def plot_learning_curve(work: Path) -> Path:
    """`learning_curve.png`: evaluation return (mean ± std over episodes) vs env step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    evals = evaluations(work)
    steps = np.array([r["step"] for r in evals])
    mean = np.array([r["return_mean"] for r in evals])
    std = np.array([r["return_std"] for r in evals])
    fig = Figure(figsize=(6.0, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, mean, marker="o", ms=3)
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_ylabel("eval return (deterministic)", fontsize=8)
    ax.set_xlabel("env step", fontsize=8)
    ax.set_title(Path(work).name, fontsize=9)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    path = Path(work) / "learning_curve.png"
    fig.savefig(path, format="png", dpi=100)
    return path
