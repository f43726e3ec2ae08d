"""D4RL's recipe for Gym-MuJoCo datasets, for any continuous-action Gymnasium env.

1. Train a SAC behaviour agent online (behaviour.py), evaluating and snapshotting its actor.
2. Reference returns: the mean return of a uniform random policy (`ref_min_score`) and of the
   final SAC policy sampled stochastically (`ref_max_score`), over `ref_episodes` episodes.
3. Levels, each of `transitions` steps unless said otherwise:
   random         a uniform random policy
   expert         the final policy, actions sampled from the tanh-Gaussian (as D4RL did)
   medium         the snapshot whose deterministic evaluation return is closest to one third of
                  the way from the random policy's return to the final evaluation return, among
                  the snapshots up to the first that reaches it (a curve that jumps past the
                  target keeps the snapshot below it), sampled stochastically
   medium-replay  the replay buffer up to that snapshot (its size is the snapshot's step)
   medium-expert  medium followed by expert (2 × transitions)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from diffrl import fileio
from diffrl.builder import behaviour, collect, sac, store
from diffrl.builder.defaults import DEFAULT_SAC_STEPS, DEFAULT_TRANSITIONS, LEVELS
from diffrl.builder.envs import BuildError, EnvInfo, describe_env
from diffrl.evaluate import EnvSpec, rollout
from diffrl.versions import software_versions

MEDIUM_FRACTION = 1.0 / 3.0
MEDIUM_RULE = (
    "evaluation closest to random + (final - random) / 3, among those up to the first that "
    "reaches it"
)
# The levels made from the medium snapshot: their build key names the rule, so datasets made
# by an earlier rule are not kept as if this build had made them.
MEDIUM_LEVELS = ("medium", "medium-replay", "medium-expert")
AGENT_LEVELS = (*MEDIUM_LEVELS, "expert")  # the levels that need a trained SAC agent
_LEVEL_SEEDS = {level: i for i, level in enumerate(LEVELS)}


@dataclasses.dataclass(frozen=True)
class BuildResult:
    dataset_id: str
    level: str
    transitions: int
    episodes: int
    written: bool  # False: it already existed from this same build and was kept


def parse_levels(levels: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [x.strip() for x in levels.split(",")] if isinstance(levels, str) else list(levels)
    names = [x for x in names if x]
    bad = [x for x in names if x not in LEVELS]
    if bad or not names:
        raise BuildError(
            f"--levels: expected a comma-separated subset of {', '.join(LEVELS)}, "
            f"found {', '.join(bad) if bad else 'none'}."
        )
    return list(dict.fromkeys(names))


def work_dir(root: Path, info: EnvInfo, cfg: behaviour.TrainConfig) -> Path:
    """The behaviour run's folder: hidden inside the Minari root, so Minari never lists it."""
    return root / ".diffrl-build" / f"{info.env_id.lower()}-seed{cfg.seed}-sac{cfg.steps}"


def default_train_config(sac_steps: int, seed: int, **overrides: Any) -> behaviour.TrainConfig:
    """Warm-up and evaluation interval scale down for small budgets (at most a tenth and a
    twentieth of the steps), so that a tiny build still evaluates and learns."""
    base = {
        "steps": sac_steps,
        "random_steps": min(10_000, sac_steps // 10),
        "eval_every": max(1, min(10_000, sac_steps // 20)),
        "seed": seed,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    base.setdefault("log_every", max(1, min(1_000, base["eval_every"] // 2)))
    return behaviour.TrainConfig(**base)


# -- policies -----------------------------------------------------------------------------------
def stochastic_policy(actor: Any, scale: sac.ActionScale, seed: int) -> collect.Policy:
    key = jax.random.PRNGKey(seed)

    def policy(obs: np.ndarray, t: int) -> np.ndarray:
        return np.asarray(sac.jit_stochastic_action(actor, obs, jax.random.fold_in(key, t), scale))

    return policy


# -- reference returns and the medium snapshot --------------------------------------------------
def reference_returns(
    work: Path, info: EnvInfo, actor: Any, scale: sac.ActionScale, episodes: int, seed: int
) -> dict[str, Any]:
    """Random and expert mean returns, cached in the work folder (a rerun reuses them)."""
    path = work / f"references-{episodes}.json"
    if path.exists():
        return json.loads(path.read_text())
    spec = EnvSpec(info.env_id, dict(info.env_kwargs))
    rand_seed = behaviour.derived_seed(seed, 3, 0)
    low = rollout(spec, collect.random_policy(info, rand_seed), episodes, rand_seed)
    exp_seed = behaviour.derived_seed(seed, 3, 1)
    high = rollout(spec, stochastic_policy(actor, scale, exp_seed), episodes, exp_seed)
    refs = {
        "ref_min_score": low["return_mean"],
        "ref_max_score": high["return_mean"],
        "ref_min_std": low["return_std"],
        "ref_max_std": high["return_std"],
        "ref_episodes": episodes,
        "ref_min_policy": "uniform random actions",
        "ref_max_policy": "final SAC policy, stochastic (the expert level's policy)",
    }
    fileio.write_json_atomic(path, refs)
    return refs


def choose_medium(evals: list[dict[str, Any]], random_return: float) -> dict[str, Any]:
    """The evaluation closest to `random + (final − random) / 3` among those up to the first
    that reaches it; `snapshot_step` is None when none reaches it (the final policy is no better
    than random).

    Not simply the first to reach it: SAC's curve often jumps (Hopper-v5: 908 at 100k steps,
    3 045 at 120k, target 1 155), and the first snapshot past the target would then make a
    `medium` level as good as `expert`."""
    if not evals:
        raise BuildError("the behaviour run has no evaluations; expected at least one.")
    final = evals[-1]["return_mean"]
    target = random_return + MEDIUM_FRACTION * (final - random_return)
    first = next((i for i, r in enumerate(evals) if r["return_mean"] >= target), None)
    chosen = None
    if first is not None:
        chosen = min(evals[: first + 1], key=lambda r: abs(r["return_mean"] - target))
    return {
        "snapshot_step": None if chosen is None else int(chosen["step"]),
        "snapshot_return": None if chosen is None else float(chosen["return_mean"]),
        "threshold": float(target),
        "random_return": float(random_return),
        "final_eval_return": float(final),
        "rule": MEDIUM_RULE,
    }


# -- the build ----------------------------------------------------------------------------------
def build_key(
    info: EnvInfo,
    cfg: behaviour.TrainConfig,
    level: str,
    transitions: int,
    refs: dict[str, Any] | None = None,
) -> str:
    """Identifies what produced a dataset: a rerun of the same build keeps its finished levels.
    `refs` is given for builds without an agent, whose reference returns vary with how they
    were obtained (a later full build does not keep a random level that lacks its expert)."""
    record = {
        "env": info.env_id,
        "kwargs": info.env_kwargs,
        "train": dataclasses.asdict(cfg),
        "level": level,
        "transitions": transitions,
    }
    if level in MEDIUM_LEVELS:
        record["medium_rule"] = MEDIUM_RULE
    if refs is not None:
        record["references"] = refs
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _plan(
    root: Path,
    info: EnvInfo,
    cfg: behaviour.TrainConfig,
    levels: list[str],
    transitions: int,
    overwrite: bool,
    refs: dict[str, Any] | None = None,
) -> dict[str, bool]:
    """level -> must it be written; refuses before any work to replace someone else's dataset.
    `refs`: the reference returns of a build without an agent (part of its datasets' key)."""
    plan = {}
    for level in levels:
        ds_id = store.dataset_id(info.env_id, level)
        meta = store.read_metadata(root, ds_id)
        if meta is None:
            plan[level] = True
            continue
        same = meta.get(store.META_KEY, {}).get("build_key") == build_key(
            info, cfg, level, transitions, refs
        )
        if not same and not overwrite:
            raise BuildError(
                f"{ds_id}: expected no dataset with this id under {root}, found one "
                f"(not made by this build command); pass --overwrite to replace it, or --out "
                f"another folder."
            )
        plan[level] = not same or overwrite
    return plan


def build_datasets(
    env_id: str,
    levels: str | list[str] = LEVELS,
    transitions: int = DEFAULT_TRANSITIONS,
    out: str | os.PathLike[str] | None = None,
    sac_steps: int = DEFAULT_SAC_STEPS,
    seed: int = 0,
    overwrite: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    ref_episodes: int = 100,
    n_envs: int = 16,
    progress: bool = True,
    ref_max_score: float | None = None,
    **train_overrides: Any,
) -> list[BuildResult]:
    """Build D4RL-style datasets of `env_id` as Minari datasets under `out` (Minari's root when
    None). Rerunning the same call continues an interrupted build; datasets already written by
    it are kept. `train_overrides` may set random_steps, eval_every, eval_episodes, log_every.

    Random alone trains no SAC; its expert reference return is `ref_max_score`, that of an
    earlier behaviour run with these settings, or not recorded (said in one line)."""
    levels = parse_levels(levels)
    _check_counts(transitions, ref_episodes, levels, ref_max_score)
    info = describe_env(env_id, env_kwargs)
    cfg = default_train_config(sac_steps, seed, **train_overrides)
    cfg.check()
    root = store.resolve_root(out)
    work = work_dir(root, info, cfg)
    refs, builder, sizes = None, None, (transitions, n_envs, ref_episodes)
    if not set(levels) & set(AGENT_LEVELS):
        refs, builder = _agentless_builder(info, cfg, work, sizes, ref_max_score)
    plan = _plan(root, info, cfg, levels, transitions, overwrite, builder and builder.key_refs)
    if builder is None:
        refs, builder = _trained_builder(info, cfg, work, sizes, progress)
    return [
        _build_level(root, info, cfg, level, transitions, plan[level], builder, refs, progress)
        for level in levels
    ]


def snapshot_episodes(
    env_id: str,
    snapshot_step: int,
    out: str | os.PathLike[str] | None = None,
    sac_steps: int = DEFAULT_SAC_STEPS,
    seed: int = 0,
    transitions: int = DEFAULT_TRANSITIONS,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 16,
    **train_overrides: Any,
) -> list[collect.Episode]:
    """The episodes the `medium` level of `build_datasets(env_id, out=out, sac_steps=...,
    seed=..., **train_overrides)` holds if its rule picks the snapshot at `snapshot_step`, read
    from that build's behaviour run as soon as the snapshot is saved, before the run ends.

    The rule needs the final return, so the step is the caller's claim (e.g. a rebuild that
    follows a known evaluation curve); check the result against the finished build's SHA-256."""
    info = describe_env(env_id, env_kwargs)
    cfg = default_train_config(sac_steps, seed, **train_overrides)
    root = store.resolve_root(out)
    work = work_dir(root, info, cfg)
    path = behaviour.snapshot_path(work, snapshot_step)
    if not path.is_file():
        saved = sorted(p.name for p in path.parent.glob("actor-*.msgpack"))
        raise BuildError(
            f"{path}: expected the behaviour run's snapshot at step {snapshot_step}, found "
            f"{len(saved)} snapshots ({', '.join(saved[-3:]) or 'none'}); is the build running "
            f"with these settings?"
        )
    template = sac.init(cfg.sac, info.obs_dim, info.action_dim, jax.random.PRNGKey(0)).actor
    medium = {"snapshot_step": snapshot_step}
    scale = behaviour.action_scale(info)
    builder = _LevelBuilder(info, cfg, work, scale, template, medium, transitions, n_envs)
    return builder.episodes("medium")


def _agentless_builder(
    info: EnvInfo,
    cfg: behaviour.TrainConfig,
    work: Path,
    sizes: tuple[int, int, int],
    ref_max_score: float | None,
) -> tuple[dict[str, Any], _LevelBuilder]:
    """Reference returns and level maker of a build that trains no agent (random only);
    `sizes`: transitions, parallel envs, reference episodes."""
    transitions, n_envs, ref_episodes = sizes
    refs, own = _references_without_agent(work, info, ref_episodes, cfg.seed, ref_max_score)
    scale = behaviour.action_scale(info)
    builder = _LevelBuilder(info, cfg, work, scale, None, None, transitions, n_envs)
    builder.key_refs = None if own else refs  # the behaviour run's own: as a full build's
    return refs, builder


def _trained_builder(
    info: EnvInfo,
    cfg: behaviour.TrainConfig,
    work: Path,
    sizes: tuple[int, int, int],
    progress: bool,
) -> tuple[dict[str, Any], _LevelBuilder]:
    """Train (or finish training) the behaviour agent; its reference returns and level maker
    (`sizes` as for _agentless_builder)."""
    transitions, n_envs, ref_episodes = sizes
    trainer = behaviour.Trainer(info, cfg, work, progress=progress)
    state = trainer.run()
    refs = _checked_references(
        info.env_id, work, info, state.actor, trainer.scale, ref_episodes, cfg.seed, progress
    )
    medium = choose_medium(behaviour.evaluations(work), refs["ref_min_score"])
    builder = _LevelBuilder(
        info, cfg, work, trainer.scale, state.actor, medium, transitions, n_envs
    )
    return refs, builder


def _references_without_agent(
    work: Path, info: EnvInfo, episodes: int, seed: int, ref_max_score: float | None
) -> tuple[dict[str, Any], bool]:
    """Reference returns when no agent is trained, and whether they are the behaviour run's
    own: those when a run with these settings finished before (and no other expert return is
    given), else the random policy's return measured now and the given expert return (None:
    not recorded, said in one line)."""
    cached = work / f"references-{episodes}.json"
    if ref_max_score is None and cached.exists():
        return json.loads(cached.read_text()), True
    spec = EnvSpec(info.env_id, dict(info.env_kwargs))
    rand_seed = behaviour.derived_seed(seed, 3, 0)
    low = rollout(spec, collect.random_policy(info, rand_seed), episodes, rand_seed)
    if ref_max_score is None:
        print(
            f"{info.env_id}: no expert is trained for --levels random, so the datasets record "
            f"no expert reference return (normalised scores need one); pass --ref-max-score R "
            f"(e.g. D4RL's expert return for this task) to record it.",
            file=sys.stderr,
            flush=True,
        )
    refs = {
        "ref_min_score": low["return_mean"],
        "ref_max_score": None if ref_max_score is None else float(ref_max_score),
        "ref_min_std": low["return_std"],
        "ref_max_std": None,
        "ref_episodes": episodes,
        "ref_min_policy": "uniform random actions",
        "ref_max_policy": "none trained" if ref_max_score is None else "given (--ref-max-score)",
    }
    return refs, False


def _check_counts(
    transitions: int, ref_episodes: int, levels: list[str], ref_max_score: float | None
) -> None:
    if ref_max_score is not None and set(levels) & set(AGENT_LEVELS):
        raise BuildError(
            "--ref-max-score: applies to builds without an agent (--levels random); this build "
            "trains SAC and measures its final policy's return instead."
        )
    if transitions < 1:
        raise BuildError(f"--transitions: expected at least 1, found {transitions}.")
    if ref_episodes < 1:
        raise BuildError(f"ref_episodes: expected at least 1, found {ref_episodes}.")


def _checked_references(
    env_id: str,
    work: Path,
    info: EnvInfo,
    actor: Any,
    scale: sac.ActionScale,
    ref_episodes: int,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """The reference returns, with a warning (at `build_datasets`' caller) when the final policy
    is no better than random."""
    if progress:
        print(
            f"reference returns: random and final policy, {ref_episodes} episodes each", flush=True
        )
    refs = reference_returns(work, info, actor, scale, ref_episodes, seed)
    if refs["ref_max_score"] <= refs["ref_min_score"]:
        warnings.warn(
            f"{env_id}: the final SAC policy (return {refs['ref_max_score']:.1f}) is no better "
            f"than random ({refs['ref_min_score']:.1f}); normalised scores will be meaningless. "
            f"Train longer (--sac-steps).",
            stacklevel=3,
        )
    return refs


def _build_level(
    root: Path,
    info: EnvInfo,
    cfg: behaviour.TrainConfig,
    level: str,
    transitions: int,
    write: bool,
    builder: _LevelBuilder,
    refs: dict[str, Any],
    progress: bool,
) -> BuildResult:
    """Write one level (`write`), or report the one this same build already wrote."""
    ds_id = store.dataset_id(info.env_id, level)
    if write:
        extra = {"build_key": build_key(info, cfg, level, transitions, builder.key_refs)}
        return _write_level(root, ds_id, level, builder, refs, extra, progress)
    return _kept_level(root, ds_id, level)


def _kept_level(root: Path, ds_id: str, level: str) -> BuildResult:
    """A level already written by this same build: its sizes, from its metadata."""
    meta = store.read_metadata(root, ds_id) or {}
    steps, episodes = meta["total_steps"], meta["total_episodes"]
    return BuildResult(ds_id, level, steps, episodes, False)


def _write_level(
    root: Path,
    ds_id: str,
    level: str,
    builder: _LevelBuilder,
    refs: dict[str, Any],
    extra: dict[str, Any],
    progress: bool,
) -> BuildResult:
    if progress:
        print(f"collecting {ds_id} ...", flush=True)
    episodes = builder.episodes(level)
    if store.read_metadata(root, ds_id) is not None:
        store.delete_dataset(root, ds_id)  # allowed by --overwrite (checked in _plan)
    store.write_dataset(
        root, ds_id, episodes, builder.info, refs, builder.record(level, refs) | extra
    )
    steps = sum(len(ep) for ep in episodes)
    if progress:
        print(f"wrote {ds_id}: {steps} transitions, {len(episodes)} episodes", flush=True)
    return BuildResult(ds_id, level, steps, len(episodes), True)


class _LevelBuilder:
    """Collects each level's episodes (cached, since medium-expert reuses medium and expert)."""

    def __init__(self, info, cfg, work, scale, actor, medium, transitions, n_envs) -> None:
        self.info, self.cfg, self.work, self.scale = info, cfg, work, scale
        self.actor, self.medium = actor, medium
        self.transitions, self.n_envs = transitions, n_envs
        self.cache: dict[str, list[collect.Episode]] = {}
        self.key_refs: dict[str, Any] | None = None  # see build_key

    def _seed(self, level: str) -> int:
        return behaviour.derived_seed(self.cfg.seed, 2, _LEVEL_SEEDS[level])

    def episodes(self, level: str) -> list[collect.Episode]:
        if level not in self.cache:
            self.cache[level] = self._collect(level)
        return self.cache[level]

    def _collect(self, level: str) -> list[collect.Episode]:
        seed, n = self._seed(level), self.transitions
        if level == "random":
            policy = collect.random_policy(self.info, seed)
        elif level == "expert":
            policy = stochastic_policy(self.actor, self.scale, seed)
        elif level == "medium":
            actor = behaviour.load_snapshot(self.work, self._medium_step(), self.actor)
            policy = stochastic_policy(actor, self.scale, seed)
        elif level == "medium-replay":
            step = self._medium_step()
            replay = behaviour.load_replay(self.work, self.info, step)
            return collect.replay_episodes(replay.rows(0, step))
        else:  # medium-expert
            return self.episodes("medium") + self.episodes("expert")
        return collect.rollout_episodes(self.info, policy, n, seed, self.n_envs)

    def _medium_step(self) -> int:
        m = self.medium
        if m["snapshot_step"] is None:
            raise BuildError(
                f"{self.info.env_id}: the medium levels need a behaviour policy better than "
                f"random; expected a final evaluation return above the random policy's "
                f"{m['random_return']:.1f}, found {m['final_eval_return']:.1f}. Train longer "
                f"(--sac-steps) or build only random and expert."
            )
        return m["snapshot_step"]

    def record(self, level: str, refs: dict[str, Any]) -> dict[str, Any]:
        """The `diffrl` metadata block of a level: how it was made, enough to reproduce it."""
        policy = {
            "random": "uniform random actions",
            "expert": "final SAC policy, stochastic",
            "medium": "SAC snapshot (see medium), stochastic",
            "medium-replay": "SAC replay buffer up to the medium snapshot",
            "medium-expert": "medium followed by expert",
        }[level]
        return {
            "level": level,
            "policy": policy,
            "transitions_requested": self.transitions,
            "sac_steps": self.cfg.steps if self.actor is not None else None,  # None: untrained
            "seed": self.cfg.seed,
            "collection_seed": self._seed(level),
            "train": dataclasses.asdict(self.cfg) if self.actor is not None else None,
            "references": refs,
            "medium": self.medium,
            "final_eval_return": None if self.medium is None else self.medium["final_eval_return"],
            "description": f"D4RL-style {level} data for {self.info.env_id} ({policy}).",
            "software": software_versions(),  # of the collection (not part of the build key)
        }
