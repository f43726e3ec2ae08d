"""Policy evaluation: vectorised Gymnasium rollouts with normalised scores."""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from diffrl.errors import EnvError

if TYPE_CHECKING:
    import gymnasium as gym

# policy(obs (E, S) float32, step index) -> actions (E, A)
PolicyFn = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Where a policy is evaluated, and how raw returns become normalised scores."""

    env_id: str
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    ref_min_score: float | None = None
    ref_max_score: float | None = None

    def normalize(self, returns: np.ndarray) -> np.ndarray | None:
        if self.ref_min_score is None or self.ref_max_score is None:
            return None
        span = self.ref_max_score - self.ref_min_score
        return 100.0 * (np.asarray(returns, np.float64) - self.ref_min_score) / span


def check_env(spec: EnvSpec, obs_dim: int, action_dim: int, max_action: float, where: str) -> None:
    """Refuse an env id that does not exist or whose spaces differ from the data's, before any
    training; say in one line when its action box differs from the data's bounds."""
    import gymnasium as gym

    if not _registered(spec.env_id):
        close = difflib.get_close_matches(spec.env_id, list(gym.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EnvError(f"{where}: unknown environment {spec.env_id!r}{hint}")
    env = gym.make(spec.env_id, **spec.env_kwargs)
    try:
        obs_shape, act_space = env.observation_space.shape, env.action_space
    finally:
        env.close()
    if obs_shape != (obs_dim,) or getattr(act_space, "shape", None) != (action_dim,):
        raise EnvError(
            f"{where}: {spec.env_id} has observations {obs_shape} and actions "
            f"{getattr(act_space, 'shape', act_space)}, the data has ({obs_dim},) and "
            f"({action_dim},); pass the --env the data was collected in"
        )
    low, high = np.asarray(act_space.low), np.asarray(act_space.high)
    if not (np.allclose(high, max_action) and np.allclose(low, -max_action)):
        print(f"{where}: warning: {spec.env_id}'s action box is [{low.min():g}, {high.max():g}], "
              f"the data's [{-max_action:g}, {max_action:g}]; actions are clipped to the data's",
              file=sys.stderr)  # fmt: skip


def _registered(env_id: str) -> bool:
    """Whether gym.make knows `env_id`; `module:Name` imports the module first, as gym.make does
    (OGBench's ids are registered by `import ogbench`)."""
    import importlib

    import gymnasium as gym

    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return name in gym.registry


def make_vector_env(spec: EnvSpec, n: int) -> gym.vector.SyncVectorEnv:
    """`n` copies in one process: on 2 cores SyncVectorEnv beats AsyncVectorEnv (DATA.md §1)."""
    import gymnasium as gym

    fns = [lambda: gym.make(spec.env_id, **spec.env_kwargs) for _ in range(n)]
    return gym.vector.SyncVectorEnv(fns)


def rollout(spec: EnvSpec, policy: PolicyFn, episodes: int, seed: int) -> dict[str, Any]:
    """Run `episodes` episodes in parallel, env i seeded `seed + i`; one episode per env.

    Returns per-episode returns and lengths, their means, the normalised score (×100) when
    reference returns are known, and the success rate when the env reports `info["success"]`
    (OGBench: the final step's success, averaged over episodes).
    """
    outcome = _episodes(spec, policy, [seed + i for i in range(episodes)])
    return summarize_returns(spec, *outcome)


def rollout_group(
    spec: EnvSpec, policy: PolicyFn, episodes: int, seeds: list[int]
) -> list[dict[str, Any]]:
    """`rollout` for several policies at once in one vectorised set of environments: policy
    `policy(obs, t)` sees the observations of run 0's episodes, then run 1's, ...; run k's
    episode i is seeded `seeds[k] + i`, as its own rollout would be. One record per run."""
    envs = [s + i for s in seeds for i in range(episodes)]
    returns, lengths, successes = _episodes(spec, policy, envs)
    cut = [slice(k * episodes, (k + 1) * episodes) for k in range(len(seeds))]
    return [summarize_returns(spec, returns[c], lengths[c], successes[c]) for c in cut]


def _episodes(
    spec: EnvSpec, policy: PolicyFn, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns, lengths and final successes (NaN where the env reported none) of one episode per
    seed, all envs stepped together."""
    episodes = len(seeds)
    env = make_vector_env(spec, episodes)
    try:
        obs, _ = env.reset(seed=seeds)
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, np.int64)
        successes = np.full(episodes, np.nan)
        alive = np.ones(episodes, bool)
        t = 0
        while alive.any():
            actions = np.asarray(policy(np.asarray(obs, np.float32), t))
            obs, rew, term, trunc, info = env.step(actions)
            returns += np.where(alive, rew, 0.0)
            lengths += alive
            ending = alive & (np.asarray(term) | np.asarray(trunc))
            _record_success(successes, ending, info)
            alive &= ~ending
            t += 1
    finally:
        env.close()
    return returns, lengths, successes


def _record_success(successes: np.ndarray, ending: np.ndarray, info: dict[str, Any]) -> None:
    if "success" not in info:
        return
    reported = np.asarray(info.get("_success", np.ones(len(ending), bool)), bool)
    now = ending & reported
    successes[now] = np.asarray(info["success"], np.float64)[now]


def summarize_returns(
    spec: EnvSpec, returns: np.ndarray, lengths: np.ndarray, successes: np.ndarray | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "env_id": spec.env_id,
        "episodes": len(returns),
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "length_mean": float(np.mean(lengths)),
        "returns": [float(r) for r in returns],
    }
    scores = spec.normalize(returns)
    if scores is not None:
        result["score"] = float(np.mean(scores))
        result["score_std"] = float(np.std(scores))
    if successes is not None and not np.isnan(successes).all():
        final = np.nan_to_num(successes, nan=0.0)  # an episode whose env never said: a failure
        result["success_rate"] = float(np.mean(final))
        result["successes"] = [float(x) for x in final]
        if scores is None:  # OGBench's number: the success rate in percent is the score
            result["score"] = 100.0 * result["success_rate"]
            result["score_std"] = 100.0 * float(np.std(final))
    return result


def _package_version(env_id: str) -> dict[str, str]:
    """The version of the package that registers `module:Name` ids (OGBench's), for the record."""
    from importlib.metadata import PackageNotFoundError, version

    module, _, _ = env_id.rpartition(":")
    if not module:
        return {}
    try:
        return {f"{module}_version": version(module)}
    except PackageNotFoundError:
        return {}


class GymEvaluator:
    """Evaluates a run's policy in its Gymnasium environment (seeded `seed + 100`, as the
    official code, so every evaluation starts from the same states)."""

    def __init__(self, spec: EnvSpec, episodes: int, seed: int, action_info: dict) -> None:
        self.spec = spec
        self.episodes = episodes
        self.seed = seed
        self.action_info = action_info

    @classmethod
    def for_data(cls, cfg: Any, data: Any) -> GymEvaluator | None:
        """The evaluator of a run on `data` (None: no environment, or 0 episodes)."""
        env_id = cfg.env or data.env_id
        if env_id is None or cfg.eval_episodes <= 0:
            return None
        kwargs = data.env_kwargs if env_id == data.env_id else {}
        spec = EnvSpec(env_id, dict(kwargs), data.ref_min_score, data.ref_max_score)
        choice = cfg.action_given()  # the run's action choice, recorded with the evaluation
        return cls(spec, cfg.eval_episodes, cfg.seed + 100, choice)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GymEvaluator:
        """The evaluator a run's config.json describes (its "evaluation" entry)."""
        spec = EnvSpec(
            record["env_id"],
            dict(record.get("env_kwargs") or {}),
            record.get("ref_min_score"),
            record.get("ref_max_score"),
        )
        info = {k: record[k] for k in ("selection", "candidates", "policy_output") if k in record}
        return cls(spec, int(record["episodes"]), int(record["seed"]), info)

    def describe(self) -> dict[str, Any]:
        return {
            **_package_version(self.spec.env_id),
            "env_id": self.spec.env_id,
            "env_kwargs": self.spec.env_kwargs,
            "episodes": self.episodes,
            "seed": self.seed,
            "ref_min_score": self.spec.ref_min_score,
            "ref_max_score": self.spec.ref_max_score,
            **self.action_info,
        }

    def __call__(self, act_fn) -> dict[str, Any]:
        return rollout(self.spec, act_fn, self.episodes, self.seed)

    def evaluate_group(self, group: list[GymEvaluator], act_fn) -> list[dict[str, Any]] | None:
        """Records for the evaluators of a group of seeds (this one first) from one vectorised
        set of environments; `act_fn(obs, t)` acts for all of them, run by run. None when
        they cannot share one (other envs or episode counts)."""
        if any((e.spec, e.episodes) != (self.spec, self.episodes) for e in group):
            return None
        return rollout_group(self.spec, act_fn, self.episodes, [e.seed for e in group])
