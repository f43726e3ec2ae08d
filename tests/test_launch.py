"""Runs as a user starts them (launch.py): dataset specs opened as data, the evaluator that goes
with each, and a reopened run that needs no training data."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from diffrl import launch
from diffrl.bandits.evaluate import BanditEvaluator
from diffrl.data import DatasetError
from diffrl.evaluate import GymEvaluator
from diffrl.run import RunConfig, execute, resolve


def _npz(path, env_id: str | None = None, n: int = 64):
    rng = np.random.default_rng(0)
    f32 = np.float32
    extra = {"env_id": np.array(env_id)} if env_id else {}
    arrays = {"observations": rng.normal(size=(n, 3)).astype(f32),
              "actions": rng.uniform(-1, 1, (n, 2)).astype(f32),
              "rewards": rng.normal(size=n).astype(f32),
              "terminals": np.zeros(n, bool)}  # fmt: skip
    np.savez(path, **arrays, **extra)
    return path


def test_bandit_specs_are_generated_from_the_seed():
    a, b = launch.load_data("bandit:corners", seed=0), launch.load_data("bandit:corners", seed=0)
    np.testing.assert_array_equal(a.actions, b.actions)
    other = launch.load_data("bandit:corners", seed=1)
    assert a.actions.shape == other.actions.shape and not np.array_equal(a.actions, other.actions)
    with pytest.raises(DatasetError, match="bandit:nowhere"):
        launch.load_data("bandit:nowhere")
    with pytest.raises(DatasetError, match="reward"):
        launch.load_data("bandit:corners", reward_transform="doubled")


def test_each_spec_gets_its_evaluator(tmp_path):
    bandit = resolve({"algo": "bc", "dataset": "bandit:corners"})
    assert isinstance(launch.evaluator_for(bandit, None), BanditEvaluator)  # data made on demand
    bare = resolve({"algo": "bc", "dataset": str(_npz(tmp_path / "bare.npz"))})
    assert launch.evaluator_for(bare, launch.training_data(bare)) is None  # nowhere to evaluate
    with_env = resolve({"algo": "bc", "dataset": str(_npz(tmp_path / "p.npz", "Pendulum-v1")),
                        "seed": 3, "eval_episodes": 4})  # fmt: skip
    gym = launch.evaluator_for(with_env, launch.training_data(with_env))
    assert isinstance(gym, GymEvaluator)
    assert (gym.spec.env_id, gym.episodes, gym.seed) == ("Pendulum-v1", 4, 103)
    # a reopened run rebuilds the same evaluator from its config.json record alone
    again = launch.evaluator_for(with_env, None, gym.describe())
    assert again.describe() == gym.describe()


def test_reopen_needs_no_training_data(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"  # a file dataset: reopening must not read it again
    f32 = np.float32
    np.savez(data, observations=rng.normal(size=(64, 3)).astype(f32),
             actions=rng.uniform(-1, 1, (64, 2)).astype(f32),
             rewards=rng.normal(size=64).astype(f32), terminals=np.zeros(64, bool))  # fmt: skip
    cfg = RunConfig(algo="bc", dataset=str(data), steps=10, eval_every=10, batch_size=8,
                    steps_per_call=5, agent={"hidden": 8})  # fmt: skip
    execute(launch.start(cfg, tmp_path / "run"), progress=False)

    def no_loading(*args, **kwargs):
        raise AssertionError("the training data was loaded")

    monkeypatch.setattr(launch, "load_dataset", no_loading)
    data.unlink()  # and it may be gone by now
    run = launch.reopen(tmp_path / "run")
    assert run.data is None and run.spec == (3, 2, 1.0)
    state = run.load_state(10)
    obs = np.zeros((5, run.spec.obs_dim), np.float32)
    assert run.act(state, obs, jax.random.PRNGKey(0)).shape == (5, 2)
    with pytest.raises(AssertionError, match="the training data was loaded"):
        launch.resume(tmp_path / "run")  # training on needs the data: the guard is live


def test_a_run_without_preset_names_the_presets_of_its_environment(tmp_path, capsys):
    data = launch.load_data(str(_npz(tmp_path / "h.npz", "Hopper-v5")))
    cfg = resolve({"algo": "dtql", "dataset": str(tmp_path / "h.npz")})
    assert cfg.preset is None
    names = launch.presets_for_env(cfg, "Hopper-v5")
    assert names == ["hopper-medium-expert-v2", "hopper-medium-replay-v2", "hopper-medium-v2"]
    (line,) = [x for x in launch.suspicious(cfg, data, None) if "has no dtql preset" in x]
    assert "its environment Hopper-v5 has: hopper-medium-expert-v2" in line
    assert launch.presets_for_env(resolve({"algo": "bc", "dataset": "x.npz"}), "Hopper-v5") == []
    with_preset = resolve({"algo": "dtql", "dataset": "x.npz", "preset": "hopper-medium-v2"})
    assert launch.presets_for_env(with_preset, "Hopper-v5") == []


def test_a_default_reward_transform_is_said_and_applied(tmp_path):
    path = str(_npz(tmp_path / "h.npz", "Hopper-v5"))
    arrays = dict(np.load(path))
    arrays["terminals"] = np.arange(64) % 16 == 15  # four episodes of different returns
    np.savez(path, **arrays)
    cfg = resolve({"algo": "iql", "dataset": path})
    (line,) = [x for x in launch.suspicious(cfg, launch.load_data(path), None) if "rewards" in x]
    assert "'iql_locomotion'" in line and "--reward-transform no" in line
    data = launch.training_data(cfg)
    raw = launch.load_data(path)
    assert data.reward_transform == "iql_locomotion"
    # episodes end on terminals; the loader drops the file's last row, so the last one has 15
    ends = np.flatnonzero(raw.terminals) + 1
    returns = np.array([e.sum() for e in np.split(raw.rewards, ends) if e.size])
    expected = raw.rewards * 1000.0 / (returns.max() - returns.min())
    np.testing.assert_allclose(data.rewards, expected, rtol=1e-5)
    plain = resolve({"algo": "iql", "dataset": path, "reward_transform": "no"})
    assert not [x for x in launch.suspicious(plain, raw, None) if "rewards" in x]
