"""Gymnasium evaluation (evaluate.py): seeded vectorised rollouts, normalised scores, and the
evaluator a run records in config.json and rebuilds from it."""

from __future__ import annotations

import numpy as np
import pytest

from diffrl.evaluate import EnvSpec, GymEvaluator, rollout, summarize_returns

PENDULUM = EnvSpec("Pendulum-v1", {}, ref_min_score=-1500.0, ref_max_score=0.0)


def _zero(obs: np.ndarray, t: int) -> np.ndarray:
    return np.zeros((len(obs), 1), np.float32)


def test_rollouts_are_seeded_per_env_and_run_to_the_end():
    result = rollout(PENDULUM, _zero, episodes=3, seed=7)
    assert result["episodes"] == 3 and result["length_mean"] == 200.0  # Pendulum's time limit
    again = rollout(PENDULUM, _zero, episodes=3, seed=7)
    assert again["returns"] == result["returns"]  # env i is seeded seed + i
    assert len(set(result["returns"])) == 3  # three different starts
    shifted = rollout(PENDULUM, _zero, episodes=2, seed=8)
    assert shifted["returns"] == result["returns"][1:]  # seed 8 is the second env above
    expect = 100.0 * (np.mean(result["returns"]) + 1500.0) / 1500.0
    assert result["score"] == pytest.approx(expect)


def test_the_policy_sees_float32_observations_and_the_step_index():
    seen = []

    def policy(obs, t):
        seen.append((obs.dtype, obs.shape, t))
        return _zero(obs, t)

    rollout(PENDULUM, policy, episodes=2, seed=0)
    assert seen[0] == (np.float32, (2, 3), 0) and seen[-1][2] == 199 and len(seen) == 200


def test_scores_only_with_reference_returns():
    returns, lengths = np.array([10.0, 30.0]), np.array([5, 7])
    plain = summarize_returns(EnvSpec("X-v0"), returns, lengths)
    assert "score" not in plain and plain["return_mean"] == 20.0 and plain["length_mean"] == 6.0
    ref = summarize_returns(EnvSpec("X-v0", {}, 0.0, 40.0), returns, lengths)
    assert (ref["score"], ref["score_std"]) == (50.0, 25.0)


def test_the_recorded_evaluator_is_rebuilt_exactly():
    evaluator = GymEvaluator(PENDULUM, 5, 107, {"selection": "argmax", "candidates": 8})
    record = evaluator.describe()
    assert record["selection"] == "argmax" and record["seed"] == 107
    rebuilt = GymEvaluator.from_record(record)
    assert rebuilt.describe() == record and rebuilt.spec == PENDULUM


def test_rollout_group_equals_each_run_alone():
    from diffrl.evaluate import EnvSpec, rollout, rollout_group

    spec = EnvSpec("Pendulum-v1")

    def policy(obs, t):  # deterministic, so the episodes must match exactly
        return np.clip(-0.5 * obs[:, 1:2] - 0.1 * obs[:, 2:3], -2.0, 2.0)

    together = rollout_group(spec, policy, 2, [100, 107])
    for seed, record in zip([100, 107], together, strict=True):
        alone = rollout(spec, policy, 2, seed)
        assert record["returns"] == alone["returns"]
        assert record["length_mean"] == alone["length_mean"] == 200.0


class _Reach:
    """A 1-D env that succeeds (and terminates) once the position passes 1; 5 steps at most."""

    def __new__(cls):
        import gymnasium as gym

        class Reach(gym.Env):
            observation_space = gym.spaces.Box(-10, 10, (1,), np.float32)
            action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

            def reset(self, seed=None, options=None):
                super().reset(seed=seed)
                self.x = 0.0
                return np.array([self.x], np.float32), {}

            def step(self, action):
                self.x += float(action[0])
                success = self.x > 1.0
                return np.array([self.x], np.float32), 0.0, success, False, {"success": success}

        return gym.wrappers.TimeLimit(Reach(), max_episode_steps=5)


def test_success_rate_is_the_final_steps_success_and_the_score_without_references():
    import gymnasium as gym

    gym.register("diffrl-test/Reach-v0", entry_point=_Reach)

    def half_move(obs: np.ndarray, t: int) -> np.ndarray:
        speeds = np.array([[0.5], [0.1], [0.3]], np.float32)  # only the first passes 1 in 5 steps
        return speeds[: len(obs)]

    result = rollout(EnvSpec("diffrl-test/Reach-v0"), half_move, episodes=3, seed=0)
    assert result["successes"] == [1.0, 0.0, 1.0]  # 0.3 × 5 = 1.5 > 1 too
    assert result["success_rate"] == pytest.approx(2 / 3)
    assert result["score"] == pytest.approx(200 / 3)  # OGBench's number, in percent
    assert result["length_mean"] == pytest.approx((3 + 5 + 4) / 3)  # success ends an episode
    plain = rollout(PENDULUM, _zero, episodes=1, seed=0)
    assert "success_rate" not in plain


def test_ogbench_envs_are_found_by_module_and_their_version_recorded():
    from importlib.metadata import version

    from diffrl.evaluate import check_env

    spec = EnvSpec("ogbench:pointmaze-medium-singletask-v0")
    check_env(spec, obs_dim=2, action_dim=2, max_action=1.0, where="test")
    record = GymEvaluator(spec, 1, 100, {}).describe()
    assert record["ogbench_version"] == version("ogbench")
    result = rollout(spec, lambda obs, t: np.zeros((len(obs), 2), np.float32), 1, 100)
    assert result["success_rate"] == 0.0 and result["score"] == 0.0  # standing still
