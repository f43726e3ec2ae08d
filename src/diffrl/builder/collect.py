"""Rolling out a policy into episodes, and cutting a replay buffer into episodes.

An `Episode` holds T steps and T+1 observations (the last one is the true final observation,
taken from `info["final_obs"]` with same-step autoreset, never the next episode's reset state).
`terminations` marks true terminal states, `truncations` the time limit. A level of exactly N
transitions ends with an episode cut short at N: that one has neither flag on its last step
(it is open, like the last episode of a D4RL file), so loaders leave it out of episode returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from diffrl.builder.envs import EnvInfo

# policy(obs (E, S) float32, step index) -> env actions (E, A)
Policy = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass
class Episode:
    observations: np.ndarray  # (T+1, S)
    actions: np.ndarray  # (T, A) float32
    rewards: np.ndarray  # (T,) float64
    terminations: np.ndarray  # (T,) bool
    truncations: np.ndarray  # (T,) bool

    def __len__(self) -> int:
        return len(self.rewards)

    def cut(self, steps: int) -> Episode:
        """The first `steps` steps, open at the end (no flag: the episode did not end there)."""
        if steps >= len(self):
            return self
        return Episode(
            self.observations[: steps + 1],
            self.actions[:steps],
            self.rewards[:steps],
            np.zeros(steps, bool),
            np.zeros(steps, bool),
        )


class _Recorder:
    """Per-env step lists, turned into an Episode when that env's episode ends."""

    def __init__(self, first_obs: np.ndarray) -> None:
        self.obs, self.act, self.rew, self.term, self.trunc = [first_obs], [], [], [], []

    def step(
        self, action: np.ndarray, reward: float, next_obs: np.ndarray, term: bool, trunc: bool
    ) -> None:
        self.act.append(action)
        self.rew.append(reward)
        self.obs.append(next_obs)
        self.term.append(term)
        self.trunc.append(trunc and not term)

    def episode(self) -> Episode:
        return Episode(
            np.asarray(self.obs, np.float64),
            np.asarray(self.act, np.float32),
            np.asarray(self.rew, np.float64),
            np.asarray(self.term, bool),
            np.asarray(self.trunc, bool),
        )


def fill(episodes: list[Episode], transitions: int) -> list[Episode]:
    """Episodes in order, the last one cut so that the total is exactly `transitions`."""
    out, total = [], 0
    for ep in episodes:
        if total >= transitions:
            break
        ep = ep.cut(transitions - total)
        out.append(ep)
        total += len(ep)
    return out


def rollout_episodes(
    info: EnvInfo, policy: Policy, transitions: int, seed: int, n_envs: int = 16
) -> list[Episode]:
    """Run `policy` in `n_envs` same-step-autoreset envs until the finished episodes hold at
    least `transitions` steps; return them in order of completion, cut to exactly that many."""
    import gymnasium as gym

    n_envs = max(1, min(n_envs, transitions))
    fns = [lambda: gym.make(info.env_id, **info.env_kwargs) for _ in range(n_envs)]
    env = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        obs, _ = env.reset(seed=[seed + i for i in range(n_envs)])
        recs = [_Recorder(o) for o in obs]
        done: list[Episode] = []
        total, t = 0, 0
        while total < transitions:
            actions = np.asarray(policy(np.asarray(obs, np.float32), t), np.float32)
            obs, rew, term, trunc, infos = env.step(actions)
            for i in range(n_envs):
                ended = bool(term[i] or trunc[i])
                next_obs = infos["final_obs"][i] if ended else obs[i]
                recs[i].step(actions[i], rew[i], next_obs, bool(term[i]), bool(trunc[i]))
                if ended:
                    done.append(recs[i].episode())
                    total += len(done[-1])
                    recs[i] = _Recorder(obs[i])  # obs[i] is already the reset observation
            t += 1
    finally:
        env.close()
    return fill(done, transitions)


def random_policy(info: EnvInfo, seed: int) -> Policy:
    """Uniform actions in the env's box from a seeded numpy generator."""
    rng = np.random.default_rng(seed)

    def policy(obs: np.ndarray, t: int) -> np.ndarray:
        shape = (len(obs), info.action_dim)
        return rng.uniform(info.action_low, info.action_high, shape).astype(np.float32)

    return policy


def replay_episodes(rows: dict[str, np.ndarray]) -> list[Episode]:
    """Replay rows (s, a, r, s', terminal, timeout) split into episodes; a final unfinished
    episode stays open. Within an episode s'[i] = s[i+1], so s' of its last row closes it."""
    ends = np.flatnonzero(rows["terminals"] | rows["timeouts"]) + 1
    n = len(rows["rewards"])
    bounds = list(ends) + ([n] if not len(ends) or ends[-1] != n else [])
    out, start = [], 0
    for end in bounds:
        obs = np.concatenate(
            [rows["observations"][start:end], rows["next_observations"][end - 1 : end]]
        )
        out.append(
            Episode(
                obs.astype(np.float64),
                rows["actions"][start:end].astype(np.float32),
                rows["rewards"][start:end].astype(np.float64),
                rows["terminals"][start:end].astype(bool),
                rows["timeouts"][start:end].astype(bool),
            )
        )
        start = end
    return out
