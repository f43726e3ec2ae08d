"""Trained policies as callables, and re-evaluation of a finished run (`diffrl eval`)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffrl import checkpoint, fileio, launch
from diffrl.acting import choose, make_fixed_act_fn
from diffrl.names import SELECTION_RULES
from diffrl.run import Run, RunError

WHICH = SELECTION_RULES


def checkpoint_step(run_dir: Path, which: str) -> int:
    """The training step whose checkpoint `which` names, from the run's summary.json."""
    if which not in WHICH:
        raise RunError(f"which must be one of {WHICH}, got {which!r}")
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise RunError(f"{run_dir}: no summary.json; the run has not finished (resume it first)")
    entry = json.loads(path.read_text()).get(which)
    if entry:
        return int(entry["step"])
    steps = sorted(Path(run_dir).glob("checkpoints/step_*.msgpack"))
    if which == "final" and steps:  # trained without evaluations: the last state is final
        return int(steps[-1].stem.removeprefix("step_"))
    raise RunError(f"{path}: no '{which}' evaluation recorded in this run (it had no evaluator)")


@dataclasses.dataclass
class Policy:
    """`policy(obs) -> actions` for a batch (or a single) observation, numpy in and out. The
    state is fixed when the policy is made: its parameters are compiled into the call."""

    run: Run
    state: Any
    step: int
    act_options: dict[str, Any]
    seed: int = 0

    def __post_init__(self) -> None:
        given = {**self.run.choice.to_json(), **self.act_options}
        self.choice = choose(self.run.agent, given, "action choice")
        agent, acfg, spec = self.run.agent, self.run.acfg, self.run.spec
        self._act = make_fixed_act_fn(agent, acfg, spec, self.choice, self.state)
        self._key = jax.random.PRNGKey(self.seed)
        self._calls = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        actions = np.asarray(self._act(jnp.asarray(batch), self._key, self._calls))
        self._calls += 1
        return actions[0] if single else actions


def load_policy(
    run_dir: str | Path, which: str = "final", seed: int = 0, **act_options: Any
) -> Policy:
    """Load the policy of a run: `final`, `best` (during training) or `offline_selected`.

    `act_options` (e.g. selection="argmax", candidates=50) override the evaluation-time action
    choice recorded in the run's configuration. The training data is not loaded.
    """
    run = launch.reopen(Path(run_dir))
    step = checkpoint_step(run.out, which)
    state, _ = checkpoint.load(run.checkpoint_path(step), run.template)
    return Policy(run, state, step, {k: v for k, v in act_options.items() if v is not None}, seed)


def evaluate_run(
    run_dir: Path,
    which: str = "final",
    episodes: int | None = None,
    selection: str | None = None,
    candidates: int | None = None,
    env: str | None = None,
) -> dict[str, Any]:
    """Evaluate a finished run's policy again; the result is written to a new eval file."""
    from diffrl.evaluate import EnvSpec, check_env, rollout

    if episodes is not None and episodes <= 0:
        raise RunError(f"--episodes must be a positive number of episodes, found {episodes}")
    policy = load_policy(run_dir, which, selection=selection, candidates=candidates)
    run = policy.run
    evaluator = run.evaluator
    if run.cfg.dataset.startswith(launch.BANDIT_PREFIX):
        if env is not None:
            raise RunError(f"{run_dir}: a bandit run is scored on its task; --env does not apply")
        result = evaluator(lambda obs, index: policy(obs))
        return _record(run_dir, which, policy, result)
    if evaluator is None and env is None:
        raise RunError(f"{run_dir}: the dataset records no environment; pass --env ENV_ID")
    base = evaluator.spec if evaluator is not None else EnvSpec(env)
    spec = dataclasses.replace(base, env_id=env, env_kwargs={}) if env else base
    s = run.spec
    check_env(spec, s.obs_dim, s.action_dim, s.max_action, str(run_dir))
    n = episodes or run.cfg.eval_episodes
    result = rollout(spec, lambda obs, t: policy(obs), n, run.cfg.seed + 100)
    return _record(run_dir, which, policy, result)


def _record(run_dir: Path, which: str, policy: Policy, result: dict[str, Any]) -> dict[str, Any]:
    """Write the evaluation to a new file in the run directory (never over an earlier one)."""
    run = policy.run
    result.update(
        which=which,
        step=policy.step,
        algo=run.cfg.algo,
        mode=run.cfg.mode,
        act_options=policy.act_options or "as trained",
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(run_dir) / f"eval-{which}-{stamp}.json"
    n = 1
    while out.exists():
        n += 1
        out = Path(run_dir) / f"eval-{which}-{stamp}-{n}.json"
    fileio.write_json_atomic(out, result)
    result["written"] = str(out)
    return result
