"""Learning parity: diffrl's reference mode against the official implementation, same data,
settings, budget and evaluation; one JSON line per run and a comparison line per algorithm.

    python benchmarks/parity.py --algo dql --official PATH/Diffusion-Policies-for-Offline-RL \\
        --dataset minari:diffrl/hopper-v5/medium-v0 --env Hopper-v5 --preset hopper-medium-v2 \\
        --steps 30000 --eval-every 5000 --seeds 0,1,2 --work ~/diffrl-work/parity-dql
    python benchmarks/parity.py --algo dtql --official PATH/Diffusion_Trusted_Q_Learning ... \\
        --set pretrain_steps=5000
    python benchmarks/parity.py --algo diffcps --official PATH/DiffCPS ...

PATH is a checkout of the official code, imported from there and driven from the outside (never
copied, never edited); PyTorch must be installed by the user. For each seed, diffrl trains first
(`diffrl.fit`, reference mode, the preset); its config.json then gives the official agent the
same resolved hyperparameters, and both train on the same transitions (the run's own training
data, reward transform applied once, passed to the official sampler untransformed). Both are
evaluated by the same code: `--episodes` episodes of env seeds `seed + 100 + i`, each
implementation with its own official action choice (Diffusion-QL and DiffCPS: 50 candidates,
DTQL: 1 024 one-step samples, each softmax over the target critic's min-Q). Diffusion-QL's and
DiffCPS's learning-rate cosine is stepped as their official scripts step it (once per evaluation
window, over steps/1000 "epochs"); DTQL's per step over the main phase. DTQL pretrains for the
run's first `pretrain_steps` updates on both sides (the official `pretrain`, then `train`);
at budgets below its 50 000 pretraining steps pass e.g. `--set pretrain_steps=5000`, which both
sides then use. Settings the official constructors do not take (DiffCPS's λ learning rate, fixed
at 3e-5 there) keep diffrl's defaults, which equal the official values.

Runs are kept under --work: a rerun skips every (implementation, seed) already finished, so a
stopped sweep continues where it stopped. `--sides diffrl` and `--sides official` split a sweep
between two processes on one --work (e.g. one per core): the official side of a seed starts once
diffrl's run of that seed has written its config.json; run each side's command again with
`--sides both` at the end for the comparison line. `--finished FILE` takes the run lines this script
printed on another machine (or before its work folder was lost) instead of training them again:
commit the lines of finished runs and a later session finishes the sweep. The last line per
algorithm compares final and best returns (mean ± std over seeds) and says whether the means
differ by less than the larger of the two seed standard deviations.
It also carries Welch's two-sided t-test of the final returns (p and the 95 % interval of the
difference).

For the diffusion algorithms each run line also carries `train_means`: per evaluation window,
the means of the training quantities both sides compute alike (TRAIN_METRICS: the BC loss, the
Q term, the critic loss, DiffCPS's λ), from diffrl's metrics.jsonl and from what the official
`train` returns; the comparison line averages them over seeds. Where two implementations'
returns part, these say from which window and in which quantity.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import diffrl
from diffrl import launch, run
from diffrl.builder import store
from diffrl.evaluate import EnvSpec, rollout
from diffrl.fileio import file_sha256
from diffrl.run import read_record, run_config
from diffrl.runlog import read_records


def ours(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    out = args.work / f"diffrl-seed{seed}"
    wall = args.work / f"diffrl-seed{seed}-wall.txt"  # beside the run: --out is diffrl's
    if not (out / "summary.json").exists():
        settings = {
            "algo": args.algo,
            "dataset": args.dataset,
            "env": args.env,
            "preset": args.preset,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "eval_episodes": args.episodes,
            "seed": seed,
            "mode": "reference",
            **dict(kv.split("=", 1) for kv in args.set),
        }
        start = time.perf_counter()
        if (out / "config.json").exists():  # a sweep stopped in this run: continue it
            run.execute(launch.resume(out), progress=False)
        else:
            diffrl.fit(settings, out, progress=False)
        before = float(wall.read_text()) if wall.exists() else 0.0
        wall.write_text(f"{before + time.perf_counter() - start:.1f}\n")
    evals = [r for r in read_records(out / "metrics.jsonl") if r.get("kind") == "eval"]
    curve = [(r["step"], r["return_mean"]) for r in evals]
    eval_s = sum(r["eval_seconds"] for r in evals)
    train_s = float(wall.read_text()) - eval_s if wall.exists() else None  # compile included
    every = args.eval_every
    means = diffrl_window_means(
        read_records(out / "metrics.jsonl"), args.algo, [s for s, _ in curve], every
    )
    return {
        "impl": "diffrl", "seed": seed, "curve": curve, "train_seconds": train_s,
        "train_means": means,
    }  # fmt: skip


def official_data(out: Path) -> tuple[Any, dict[str, Any], Any]:
    """The diffrl run's resolved agent settings, its training data and its evaluation spec."""
    record = read_record(out)
    cfg = run_config(out, record)
    data = launch.training_data(cfg)
    evaluation = record["evaluation"]
    spec = EnvSpec(evaluation["env_id"], dict(evaluation.get("env_kwargs") or {}))
    return data, record["agent"], (spec, evaluation["seed"], evaluation["episodes"], cfg)


def official_dql(
    args: argparse.Namespace, data: Any, agent: dict[str, Any], seed: int, steps: int
) -> tuple:
    """The official Diffusion-QL agent on `data`: (agent, train(window), act(obs batch, t))."""
    import torch

    sys.path.insert(0, str(args.official))
    from agents.ql_diffusion import Diffusion_QL
    from utils.data_sampler import Data_Sampler

    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = Data_Sampler(_official_arrays(data), "cpu", "no")  # rewards already transformed
    model = Diffusion_QL(
        state_dim=data.obs_dim,
        action_dim=data.action_dim,
        max_action=float(data.action_high),
        device="cpu",
        discount=agent["gamma"],
        tau=agent["tau"],
        max_q_backup=agent["max_q_backup"],
        beta_schedule=agent["beta_schedule"],
        n_timesteps=agent["n_steps"],
        eta=agent["eta"],
        lr=agent["actor_lr"],
        lr_decay=agent["lr_decay"],
        lr_maxt=max(1, steps // 1000),  # main.py: T_max = num_epochs, stepped per train() call
        grad_norm=agent["grad_norm"],
    )

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        return np.stack([model.sample_action(row) for row in obs])

    return model, lambda window: model.train(sampler, window, batch_size=256), act


def official_dtql(
    args: argparse.Namespace, data: Any, agent: dict[str, Any], seed: int, steps: int
) -> tuple:
    """The official DTQL agent on `data`. The official main.py pretrains (`pretrain`, no learning
    -rate steps) and then trains; diffrl runs pretraining as the run's first `pretrain_steps`
    updates, so a window that spans both calls `pretrain` for its first part."""
    import gymnasium as gym
    import torch

    sys.path.insert(0, str(args.official))
    from agents.dtql import DTQL
    from utils.data_sampler import Data_Sampler

    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = Data_Sampler(_official_arrays(data), "cpu", "no")  # rewards already transformed
    high = float(data.action_high)
    model = DTQL(
        "cpu", data.obs_dim, data.action_dim,
        action_space=gym.spaces.Box(-high, high, (data.action_dim,), np.float32),
        discount=agent["gamma"], alpha=agent["alpha"], lr=agent["lr"],
        lr_decay=agent["lr_decay"], lr_maxt=max(1, steps - agent["pretrain_steps"]),
        expectile=agent["expectile"], tau=agent["tau"], gamma=agent["nll_weight"],
    )  # fmt: skip
    model.parity_pretrained = 0  # pickled with the agent, so a resumed sweep knows its phase

    def train(window: int) -> list[dict]:
        pre = max(0, min(window, agent["pretrain_steps"] - model.parity_pretrained))
        if pre:
            model.pretrain(sampler, batch_size=256, pretrain_steps=pre)
            model.parity_pretrained += pre
        return [model.train(sampler, batch_size=256) for _ in range(window - pre)]

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        return np.stack([model.sample_action(row) for row in obs])

    return model, train, act


def official_diffcps(
    args: argparse.Namespace, data: Any, agent: dict[str, Any], seed: int, steps: int
) -> tuple:
    """The official DiffCPS agent on `data`; its run.py calls `train` once per evaluation window
    and steps the cosine per call over num_epochs, as Diffusion-QL's main.py."""
    import torch

    sys.path.insert(0, str(args.official))
    from agents.diffcps import DiffCPS
    from utils.data_sampler import Data_Sampler

    torch.manual_seed(seed)
    np.random.seed(seed)
    sampler = Data_Sampler(_official_arrays(data), "cpu", "no")  # rewards already transformed
    model = DiffCPS(
        data.obs_dim, data.action_dim, float(data.action_high), "cpu",
        discount=agent["gamma"], tau=agent["tau"], max_q_backup=agent["max_q_backup"],
        LA=agent["lambda_init"], beta_schedule=agent["beta_schedule"],
        n_timesteps=agent["n_steps"], lr=agent["actor_lr"], lr_decay=agent["lr_decay"],
        lr_maxt=max(1, steps // 1000), grad_norm=agent["grad_norm"],
        policy_freq=agent["policy_freq"], target_kl=agent["kappa"],
        LA_max=agent["lambda_max"], LA_min=agent["lambda_min"],
    )  # fmt: skip

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        return np.stack([model.sample_action(row) for row in obs])

    return model, lambda window: model.train(sampler, window, batch_size=256), act


def official_td3bc(
    args: argparse.Namespace, data: Any, agent: dict[str, Any], seed: int, steps: int
) -> tuple:
    """The official TD3+BC agent on `data`, as its main.py sets it up: the replay buffer filled
    with `convert_D4RL`, states normalised by `normalize_states` (the same mean and std+eps as
    diffrl's), noise scaled by max_action, one `train` call per step; deterministic actions on
    normalised states. Its learning rates (3e-4) and widths (256) are fixed in its code, equal to
    diffrl's defaults."""
    import torch

    sys.path.insert(0, str(args.official))
    import utils
    from TD3_BC import TD3_BC

    torch.manual_seed(seed)
    np.random.seed(seed)
    high = float(data.action_high)
    buffer = utils.ReplayBuffer(data.obs_dim, data.action_dim, max_size=1)
    buffer.convert_D4RL(_official_arrays(data))  # rewards already transformed
    mean, std = (
        buffer.normalize_states(agent["normalize_eps"]) if agent["normalize_states"] else (0, 1)
    )
    model = TD3_BC(
        data.obs_dim, data.action_dim, high, discount=agent["gamma"], tau=agent["tau"],
        policy_noise=agent["policy_noise"] * high, noise_clip=agent["noise_clip"] * high,
        policy_freq=agent["policy_freq"], alpha=agent["alpha"],
    )  # fmt: skip

    def train(window: int) -> None:  # the buffer is rebuilt on resume: it holds no state but data
        for _ in range(window):
            model.train(buffer, batch_size=256)

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        return np.stack([model.select_action((row - mean) / std) for row in obs])

    return model, train, act


class OfficialIQL:
    """The official IQL `Learner`, living in benchmarks/parity_iql_worker.py under
    --official-python (its tensorflow-probability does not run under diffrl's JAX)."""

    def __init__(self, args: argparse.Namespace, data: Any, settings: dict, seed: int) -> None:
        transitions = args.work / f"official-seed{seed}-data.npz"
        arrays = _official_arrays(data)
        np.savez(transitions, masks=1.0 - arrays.pop("terminals"), **arrays)
        worker = Path(__file__).with_name("parity_iql_worker.py")
        command = [str(args.official_python), str(worker), "--official", str(args.official)]
        command += ["--data", str(transitions), "--settings", json.dumps(settings)]
        self.process = subprocess.Popen(
            [*command, "--seed", str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def call(self, **request: Any) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the official IQL worker stopped (exit {self.process.wait()})")
        return json.loads(line)

    def __del__(self) -> None:
        # one worker per seed: end it with its seed's run, not with the whole sweep
        if self.process.poll() is None:
            self.process.stdin.close()  # the worker's loop ends at end of input
            self.process.wait(timeout=60)

    def parity_state(self) -> dict[str, str]:
        return {"worker": self.call(cmd="state")["state"]}

    def parity_restore(self, state: dict[str, str]) -> None:
        self.call(cmd="restore", state=state["worker"])


def official_iql(
    args: argparse.Namespace, data: Any, agent: dict[str, Any], seed: int, steps: int
) -> tuple:
    """The official IQL agent as its train_offline.py builds it (`Learner(seed, obs, act,
    max_steps, **mujoco_config)`), batches of 256 by `np.random.randint`, evaluation at
    temperature 0. Its advantage-weight clip (100) is fixed in its code, diffrl's default."""
    if args.official_python is None:
        raise SystemExit("--algo iql needs --official-python (see parity_iql_worker.py)")
    hidden = agent["hidden"]
    settings = {
        "actor_lr": agent["actor_lr"], "value_lr": agent["value_lr"],
        "critic_lr": agent["critic_lr"], "hidden_dims": [hidden, hidden],
        "discount": agent["gamma"], "tau": agent["tau"], "expectile": agent["expectile"],
        "temperature": agent["temperature"], "dropout_rate": agent["actor_dropout"] or None,
        "max_steps": agent["total_steps"],
        "opt_decay_schedule": "cosine" if agent["lr_decay"] else "",
    }  # fmt: skip
    model = OfficialIQL(args, data, settings, seed)

    def act(obs: np.ndarray, t: int) -> np.ndarray:
        return np.asarray(model.call(cmd="act", obs=obs.tolist())["actions"], np.float32)

    return model, lambda window: model.call(cmd="train", steps=window), act


def _official_arrays(data: Any) -> dict[str, np.ndarray]:
    return {
        "observations": data.observations,
        "actions": data.actions,
        "next_observations": data.next_observations,
        "rewards": data.rewards,
        "terminals": data.terminals.astype(np.float32),
    }


OFFICIAL = {
    "dql": official_dql,
    "dtql": official_dtql,
    "diffcps": official_diffcps,
    "td3bc": official_td3bc,
    "iql": official_iql,
}
# what a checkout of each must hold
OFFICIAL_FILES = {
    "dql": "agents/ql_diffusion.py",
    "dtql": "agents/dtql.py",
    "diffcps": "agents/diffcps.py",
    "td3bc": "TD3_BC.py",
    "iql": "learner.py",
}
# the training quantities both sides compute alike, compared per evaluation window (the mean
# over the window's steps): official metric name -> (diffrl metric, sign). A shift in one of
# them points at where two runs part, which final returns of a few seeds cannot.
TRAIN_METRICS = {
    "dql": {
        "bc_loss": ("actor/bc_loss", 1.0),
        "ql_loss": ("actor/q_loss", 1.0),
        "critic_loss": ("critic/loss", 1.0),
    },
    "diffcps": {
        "kl_loss": ("actor/bc_loss", 1.0),
        "Lambda": ("dual/lambda_used", 1.0),
        "critic_loss": ("critic/loss", 1.0),
    },
    "dtql": {
        "bc_loss": ("behaviour/bc_loss", 1.0),
        "distill_loss": ("actor/tr_loss", 1.0),
        "ql_loss": ("actor/q_policy", -1.0),  # official: −mean min Q(s, a_θ)
        "critic_loss": ("critic/loss", 1.0),
    },
}


def diffrl_window_means(
    records: list[dict[str, Any]], algo: str, windows: list[int], every: int
) -> list[dict[str, float | None]]:
    """Per evaluation window (steps w − every < step ≤ w), the mean of each compared metric over
    diffrl's train records (equal-length chunks), under the official name; None where the
    window never computed it (DTQL's policy terms in pretraining)."""
    names = TRAIN_METRICS.get(algo, {})
    out = []
    for w in windows:
        rows = [r for r in records if r.get("kind") == "train" and w - every < r["step"] <= w]
        means: dict[str, float | None] = {}
        for official_name, (name, sign) in names.items():
            values = [r[name] for r in rows if r.get(name) is not None]
            means[official_name] = sign * statistics.fmean(values) if values else None
        out.append(means)
    return out


def official_window_means(algo: str, returned: list[Any]) -> dict[str, float | None]:
    """The mean of each compared metric over what the official `train` calls of one window
    returned (dicts of per-step lists; anything else holds none of them)."""
    means: dict[str, float | None] = {}
    for name in TRAIN_METRICS.get(algo, {}):
        values = [v for m in returned if isinstance(m, dict) for v in m.get(name, [])]
        means[name] = statistics.fmean(values) if values else None
    return means


def official(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    path = args.work / f"official-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    ours_dir = args.work / f"diffrl-seed{seed}"
    if not (ours_dir / "config.json").is_file():
        raise SystemExit(
            f"{ours_dir}: expected diffrl's run of seed {seed} (its config.json gives the official "
            f"side its settings and data), found none; start the diffrl side first"
        )
    data, agent, (spec, eval_seed, episodes, cfg) = official_data(ours_dir)
    model, train, act = OFFICIAL[args.algo](args, data, agent, seed, cfg.steps)
    partial = args.work / f"official-seed{seed}.partial.pt"
    curve, train_s, means = resume_official(partial, model)
    for step in range(cfg.eval_every * (len(curve) + 1), cfg.steps + 1, cfg.eval_every):
        start = time.perf_counter()
        returned = train(cfg.eval_every)
        train_s += time.perf_counter() - start
        means.append(official_window_means(args.algo, _as_list(returned)))
        curve.append((step, rollout(spec, act, episodes, eval_seed)["return_mean"]))
        save_official(partial, model, curve, train_s, means)
    result = {
        "impl": "official", "seed": seed, "curve": curve, "train_seconds": train_s,
        "train_means": means,
    }  # fmt: skip
    path.write_text(json.dumps(result))
    partial.unlink(missing_ok=True)
    return result


def _as_list(returned: Any) -> list[Any]:
    return returned if isinstance(returned, list) else [returned]


def save_official(path: Path, model: Any, curve: list, train_s: float, means: list) -> None:
    """The official agent's whole state after an evaluation window (its networks, optimisers,
    schedulers and step, pickled as they are) with the RNG states, so a stopped sweep continues
    as if it had not stopped."""
    import torch

    state = {
        "agent": model.parity_state() if hasattr(model, "parity_state") else model.__dict__,
        "curve": curve,
        "train_s": train_s,
        "train_means": means,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def resume_official(path: Path, model: Any) -> tuple[list, float, list]:
    if not path.exists():
        return [], 0.0, []
    import torch

    state = torch.load(path, weights_only=False)
    if hasattr(model, "parity_restore"):  # an agent in another process
        model.parity_restore(state["agent"])
    else:
        model.__dict__.update(state["agent"])
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    curve = [tuple(x) for x in state["curve"]]
    # a partial state saved before the window means were kept: no means for its windows
    means = state.get("train_means", [{} for _ in curve])
    return curve, state["train_s"], means


def compare(runs: list[dict[str, Any]], last: int = 1) -> dict[str, Any]:
    """Final returns (with `last` > 1: each seed's mean of its last `last` evaluations), best
    returns and training quantities of both sides, and whether the final means part."""
    line: dict[str, Any] = {"kind": "comparison", "final_evaluations": last}
    for impl in ("diffrl", "official"):
        mine = [r for r in runs if r["impl"] == impl]
        final = [statistics.fmean(v for _, v in r["curve"][-last:]) for r in mine]
        best = [max(v for _, v in r["curve"]) for r in mine]
        line[impl] = {
            "final_mean": statistics.fmean(final),
            "final_std": statistics.pstdev(final),
            "best_mean": statistics.fmean(best),
            "final_per_seed": final,
            "train_means": seed_means([r.get("train_means") or [] for r in mine]),
        }
    a, b = line["diffrl"], line["official"]
    spread = max(a["final_std"], b["final_std"])
    line["final_difference"] = a["final_mean"] - b["final_mean"]
    line["within_seed_spread"] = abs(line["final_difference"]) <= spread
    line["welch"] = welch_test(a["final_per_seed"], b["final_per_seed"])
    return line


def welch_test(ours: list[float], theirs: list[float]) -> dict[str, Any] | None:
    """Welch's two-sided t-test of two sets of final returns and the 95 % confidence interval of
    the difference of their means; None with fewer than two seeds a side or no spread within
    either side (the test's standard error is then 0 and t infinite)."""
    if min(len(ours), len(theirs)) < 2:
        return None
    if statistics.variance(ours) == statistics.variance(theirs) == 0:
        return None
    from scipy import stats  # a dependency of jax itself

    result = stats.ttest_ind(ours, theirs, equal_var=False)
    ci = result.confidence_interval(0.95)
    return {"t": float(result.statistic), "df": float(result.df), "p": float(result.pvalue),
            "ci95": [float(ci.low), float(ci.high)]}  # fmt: skip


def seed_means(per_seed: list[list[dict[str, float | None]]]) -> list[dict[str, float | None]]:
    """Per window, each metric's mean over the seeds that have it (runs from before the window
    means were recorded have none)."""
    windows = max((len(m) for m in per_seed), default=0)
    out = []
    for i in range(windows):
        rows = [m[i] for m in per_seed if i < len(m)]
        names = dict.fromkeys(k for row in rows for k in row)
        values = {k: [row[k] for row in rows if row.get(k) is not None] for k in names}
        out.append({k: statistics.fmean(v) if v else None for k, v in values.items()})
    return out


def dataset_file(spec: str) -> Path:
    """The file that holds a dataset's transitions: a Minari id's `main_data.hdf5` under
    $MINARI_DATASETS_PATH (Minari's default folder without it), else the path itself."""
    if spec.startswith("minari:"):
        return store.main_data_file(store.resolve_root(None), spec.removeprefix("minari:"))
    return Path(spec).expanduser()


def check_dataset(spec: str, expected: str) -> None:
    """Refuse a sweep on other transitions than the ones its finished runs saw (a rebuild on
    another instruction set makes another dataset under the same id: docs/datasets.md)."""
    path = dataset_file(spec)
    if not path.is_file():
        raise SystemExit(f"--dataset-sha256: {path} (the file of {spec}) does not exist")
    digest = file_sha256(path)
    if digest != expected.lower():
        raise SystemExit(
            f"--dataset-sha256: {path} has SHA-256 {digest}, expected {expected}: "
            f"not the dataset this sweep's runs were trained on"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=sorted(OFFICIAL), required=True)
    p.add_argument("--official", type=Path, required=True, help="checkout of the official code")
    p.add_argument("--dataset", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--preset", default=None)
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a diffrl setting for both sides (e.g. pretrain_steps=5000)")  # fmt: skip
    p.add_argument("--official-python", type=Path, default=None,
                   help="iql: the Python of an environment the official code runs in")  # fmt: skip
    p.add_argument("--work", type=Path, required=True, help="where both implementations' runs live")
    p.add_argument("--finished", type=Path, default=None,
                   help="JSON lines this script printed before (e.g. committed from an earlier "
                   "machine): those runs are not trained again")  # fmt: skip
    p.add_argument("--sides", choices=("both", "diffrl", "official"), default="both",
                   help="train one implementation only: two processes (one per core) then "
                   "share a seed; the official side needs diffrl's run of the seed to have "
                   "started")  # fmt: skip
    p.add_argument("--dataset-sha256", default=None, metavar="HEX",
                   help="refuse to run unless the dataset's file has this SHA-256 "
                   "(docs/datasets.md lists the builds')")  # fmt: skip
    args = p.parse_args()
    if args.dataset_sha256:
        check_dataset(args.dataset, args.dataset_sha256)
    marker = args.official / OFFICIAL_FILES[args.algo]
    if not marker.is_file():
        p.error(f"--official {args.official}: expected a checkout with {marker}, found none")
    args.work = args.work.expanduser()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = sweep(args, finished_runs(args.finished, args.algo))
    if {r["impl"] for r in runs} != {"diffrl", "official"}:
        print("no comparison: only one side's runs are here (--sides)", file=sys.stderr)
        return
    print(json.dumps({"algo": args.algo, "dataset": args.dataset, **compare(runs)}), flush=True)


def sweep(args: argparse.Namespace, earlier: dict[tuple[str, int], dict]) -> list[dict]:
    """Every (seed, implementation) run, trained or taken from --finished. An official run
    still to do needs diffrl's run directory of its seed, so that diffrl run is taken only when
    the official one of its seed is finished too; otherwise it trains again, and a line that
    differs from the earlier one is reported."""
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for impl, train in (("diffrl", ours), ("official", official)):
            before = earlier.get((impl, seed))
            reuse = before is not None and ("official", seed) in earlier
            if not reuse and args.sides not in ("both", impl):
                continue  # the other process of a split sweep trains it
            result = before if reuse else train(args, seed)
            if before is not None and json.dumps(before["curve"]) != json.dumps(result["curve"]):
                print(f"warning: {impl} seed {seed}: curve {result['curve']}, its --finished "
                      f"line had {before['curve']}", file=sys.stderr)  # fmt: skip
            runs.append(result)
            print(json.dumps({"kind": "run", "algo": args.algo, **result}), flush=True)
    return runs


def finished_runs(path: Path | None, algo: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(impl, seed) -> the run line of `algo` in a --finished file."""
    if path is None:
        return {}
    if not path.exists():  # the first session of a sweep: the same command for every session
        print(f"{path}: no finished runs yet (the file does not exist)", file=sys.stderr)
        return {}
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {
        (r["impl"], r["seed"]): {k: v for k, v in r.items() if k not in ("kind", "algo")}
        for r in lines
        if r.get("kind") == "run" and r.get("algo") == algo
    }


if __name__ == "__main__":
    main()
