"""Exported policies: a trained policy as a `jax.export` (StableHLO) file that runs without diffrl.

`diffrl export RUN_DIR --out policy.jaxexport` writes two files:

    policy.jaxexport        the serialised function act(obs, key, index) -> actions, parameters
                            included as constants, the batch size polymorphic, lowered for CPU
                            and CUDA; the run's action choice inside (candidates ranked by the
                            critic where the run evaluates that way, or plain sampling)
    policy.jaxexport.json   obs and action sizes and bounds, env id, algorithm, step, selection
                            rule, action choice, the diffrl and JAX versions, the calling
                            convention

`obs` is float32 (B, obs_dim); `key` a raw uint32[2] key (`jax.random.PRNGKey(seed)`); `index`
an int32 scalar folded into the key inside (an evaluation passes the env step, so each call draws
fresh noise). With the same observations, key and index it returns the actions of
`diffrl.load_policy(run_dir, which)` on its `index`-th call: the same candidates and picks, each
value equal or within the last bit of float32 (XLA fuses the exported program, parameters as
constants and the batch symbolic, differently; tests/test_export.py). Loading needs only jax and
numpy:

    import jax, numpy as np
    act = jax.export.deserialize(open("policy.jaxexport", "rb").read())
    actions = np.asarray(act.call(obs.astype(np.float32), jax.random.PRNGKey(0), np.int32(t)))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import diffrl
from diffrl import fileio
from diffrl.acting import describe_choice, policy_action
from diffrl.policy import load_policy
from diffrl.run import RunError

SUFFIX = ".jaxexport"
PLATFORMS = ("cpu", "cuda")
CALLING = (
    "act.call(obs float32[B, obs_dim], key uint32[2] (jax.random.PRNGKey), index int32[]) "
    "-> actions float32[B, action_dim]; the key used is fold_in(key, index)"
)


def export_policy(
    run_dir: str | Path, out: str | Path, which: str = "final", plain: bool = False
) -> tuple[Path, Path]:
    """Write the policy `which` of `run_dir` to `out` and its sidecar `out.json`; returns both.
    `plain` exports plain sampling instead of the run's candidate ranking. Existing files are
    never replaced."""
    out = Path(out)
    sidecar = out.with_name(out.name + ".json")
    for path in (out, sidecar):
        if path.exists():
            raise RunError(
                f"{path} exists; diffrl export never replaces a file: choose another --out"
            )
    options = {"selection": "none", "candidates": 1} if plain else {}
    policy = load_policy(run_dir, which, **options)
    exported = _export(policy)
    info = _describe(policy, which, run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_atomic(out, exported.serialize())
    fileio.write_json_atomic(sidecar, info)
    return out, sidecar


def _export(policy: Any) -> Any:
    run, choice = policy.run, policy.choice
    act = policy_action(run.agent, run.acfg, run.spec, choice)
    state = run.agent.policy_state(policy.state, choice.ranked)

    def call(obs: jax.Array, key: jax.Array, index: jax.Array) -> jax.Array:
        return act(state, obs, jax.random.fold_in(key, index))

    (batch,) = jax.export.symbolic_shape("b")
    args = (
        jax.ShapeDtypeStruct((batch, run.spec.obs_dim), jnp.float32),
        jax.ShapeDtypeStruct((2,), jnp.uint32),
        jax.ShapeDtypeStruct((), jnp.int32),
    )
    return jax.export.export(jax.jit(call), platforms=PLATFORMS)(*args)


def _describe(policy: Any, which: str, run_dir: str | Path) -> dict[str, Any]:
    run = policy.run
    evaluation = (run.evaluator.describe() if hasattr(run.evaluator, "describe") else None) or {}
    return {
        "format": "jax.export",
        "calling": CALLING,
        "obs_dim": run.spec.obs_dim,
        "action_dim": run.spec.action_dim,
        "action_low": -run.spec.max_action,
        "action_high": run.spec.max_action,
        "env_id": evaluation.get("env_id"),
        "env_kwargs": evaluation.get("env_kwargs") or {},
        "eval_seed": evaluation.get("seed"),
        "eval_episodes": evaluation.get("episodes"),
        "algo": run.cfg.algo,
        "mode": run.cfg.mode,
        "dataset": run.cfg.dataset,
        "which": which,
        "step": policy.step,
        "action_choice": policy.choice.to_json(),
        "acts_by": describe_choice(run.agent, policy.choice),
        "platforms": list(PLATFORMS),
        "run_dir": str(Path(run_dir).resolve()),
        "diffrl": diffrl.__version__,
        "jax": jax.__version__,
    }


class ExportedPolicy:
    """An exported policy loaded back: `policy(obs)` like diffrl.load_policy's (one key, the
    call count as index), with its sidecar as `info`."""

    def __init__(self, path: str | Path, seed: int = 0) -> None:
        path = Path(path)
        sidecar = path.with_name(path.name + ".json")
        if not sidecar.is_file():
            raise RunError(
                f"{path}: no sidecar {sidecar.name} beside it (written by diffrl export)"
            )
        try:
            self.exported = jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception as exc:  # a damaged or foreign file: say so in one line
            raise RunError(f"{path}: not a readable jax.export file ({exc})") from None
        self.info = json.loads(sidecar.read_text())
        self.key = jax.random.PRNGKey(seed)
        self.calls = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        actions = np.asarray(self.exported.call(batch, self.key, np.int32(self.calls)))
        self.calls += 1
        return actions[0] if single else actions


def evaluate_exported(
    path: Path, episodes: int | None = None, env: str | None = None
) -> dict[str, Any]:
    """Roll out an exported policy in its env (or `env`), with the run's evaluation seeds."""
    from diffrl.evaluate import EnvSpec, check_env, rollout

    if episodes is not None and episodes <= 0:
        raise RunError(f"--episodes must be a positive number of episodes, found {episodes}")
    policy = ExportedPolicy(path)
    info = policy.info
    env_id = env or info.get("env_id")
    if env_id is None:
        raise RunError(f"{path}: the policy records no environment; pass --env ENV_ID")
    spec = EnvSpec(env_id, {} if env else dict(info.get("env_kwargs") or {}))
    check_env(spec, info["obs_dim"], info["action_dim"], info["action_high"], str(path))
    n = episodes or info.get("eval_episodes") or 10
    result = rollout(spec, lambda obs, t: policy(obs), n, info.get("eval_seed", 100))
    return {**result, "policy": str(path), "algo": info["algo"], "step": info["step"]}
