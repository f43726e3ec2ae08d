"""OGBench datasets made on this machine by the scripted oracles that ship in the `ogbench` package.

Follows OGBench's own generation (its data_gen_scripts and commands.sh): manipulation
(cube, scene, puzzle) in `data_collection` mode with `terminate_at_goal=False` and episodes of
1 001 steps, the non-Markovian plan oracles for `play` (noise 0.1, smoothing 0.5) and the
Markovian ones for `noisy` (min_norm 0.4, per-episode noise level ξ ~ U(0, 0.1), Gaussian noise
of std [ξ, ξ, ξ, 3ξ, 10ξ], a uniform random action with probability 0.1 — puzzle 0.2);
pointmaze `navigate` with the maze's BFS subgoal direction plus N(0, 0.5) noise, starts in any
free cell, goals in junction/corner/dead-end cells, a new goal on each success. Per step the row
holds the observation before the step, the action, `terminals` = the episode's end, and the
simulator state before the step (`prev_qpos`, `prev_qvel`, `prev_button_states`), which is what
OGBench's single-task relabelling reads. Then num_episodes // 10 more episodes make the
validation file.

Unlike OGBench's scripts (which seed nothing), every episode is seeded from (seed, index), so a
build is reproducible and resumes exactly: episodes are written in chunks under
`OUT/.diffrl-build/`, and a re-run continues after the last finished chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from diffrl import fileio
from diffrl.builder.envs import BuildError
from diffrl.run import lock

EPISODE_STEPS = 1001
CHUNK_EPISODES = 25
_CUBES = {"single": 1000, "double": 1000, "triple": 3000, "quadruple": 5000}
_PUZZLES = {"3x3": 1000, "4x4": 1000, "4x5": 3000, "4x6": 5000}
_MAZES = {"medium": (1000, 1001), "large": (1000, 1001), "giant": (500, 2001),
          "teleport": (1000, 1001)}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How OGBench makes one dataset (`<name>-v0.npz` and `<name>-v0-val.npz`)."""

    name: str  # e.g. cube-single-play
    env_id: str  # the data-collection env, e.g. cube-single-v0
    kind: str  # play | noisy | navigate
    episodes: int  # training episodes (validation: a tenth more)
    episode_steps: int = EPISODE_STEPS
    p_random_action: float = 0.0

    @property
    def val_episodes(self) -> int:
        return max(1, self.episodes // 10)  # OGBench: episodes // 10; one at least, for tiny builds


def _recipes() -> dict[str, Recipe]:
    out: dict[str, Recipe] = {}
    families = [(f"cube-{k}", n, 0.1) for k, n in _CUBES.items()] + [("scene", 1000, 0.1)]
    families += [(f"puzzle-{k}", n, 0.2) for k, n in _PUZZLES.items()]
    for env, episodes, p_random in families:
        out[f"{env}-play"] = Recipe(f"{env}-play", f"{env}-v0", "play", episodes)
        noisy = Recipe(f"{env}-noisy", f"{env}-v0", "noisy", episodes, p_random_action=p_random)
        out[noisy.name] = noisy
    for maze, (episodes, steps) in _MAZES.items():
        name = f"pointmaze-{maze}-navigate"
        out[name] = Recipe(name, f"pointmaze-{maze}-v0", "navigate", episodes, steps)
    return out


RECIPES = _recipes()


def recipe_for(name: str, episodes: int | None = None) -> Recipe:
    """The recipe of `name` (e.g. cube-single-play), with `episodes` instead of OGBench's count."""
    recipe = RECIPES.get(name.removesuffix("-v0"))
    if recipe is None:
        raise BuildError(
            f"--ogbench: '{name}' cannot be made here; expected one of {', '.join(RECIPES)} "
            f"(ant/humanoid mazes and antsoccer need OGBench's expert checkpoints, visual "
            f"datasets a renderer)."
        )
    if episodes is not None:
        if episodes < 1:
            raise BuildError(f"--episodes: expected a positive count, found {episodes}.")
        recipe = dataclasses.replace(recipe, episodes=episodes)
    return recipe


# -- one episode -----------------------------------------------------------------------------
def make_collection_env(recipe: Recipe) -> Any:
    import gymnasium as gym
    import ogbench  # noqa: F401  (registers OGBench's environments)

    kwargs: dict[str, Any] = {"terminate_at_goal": False, "max_episode_steps": recipe.episode_steps}
    if recipe.kind != "navigate":
        kwargs["mode"] = "data_collection"
    return gym.make(recipe.env_id, **kwargs)


def episode_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def collect_episode(env: Any, actor: Callable[..., Any], recipe: Recipe, seed: int) -> dict:
    """One episode's rows. The oracles (and the random actions) draw from NumPy's global
    generator, so it is seeded with the env. A scene episode whose cube leaves the view is made
    again, as OGBench does, from a seed derived from the attempt."""
    for attempt in range(1000):
        attempt_seed = seed if attempt == 0 else episode_seed(seed, attempt)
        np.random.seed(attempt_seed)
        rows = actor(env, recipe, attempt_seed)
        if not recipe.name.startswith("scene") or _scene_is_healthy(rows["qpos"]):
            return rows
    raise BuildError(f"{recipe.name}: 1000 attempts of episode seed {seed} were all unhealthy")


def _scene_is_healthy(qpos: np.ndarray) -> bool:
    xyz = qpos[:, 14:17]  # the cube; it may sit far left only inside the drawer (z in .06-.08)
    left_outside_drawer = (xyz[:, 1] <= -0.3) & ((xyz[:, 2] < 0.06) | (xyz[:, 2] > 0.08))
    return not ((xyz[:, 1] >= 0.29).any() or left_outside_drawer.any())


def _manipulation_oracles(env: Any, kind: str) -> dict[str, Any]:
    from ogbench.manipspace.oracles.markov import (
        button_markov,
        cube_markov,
        drawer_markov,
        window_markov,
    )
    from ogbench.manipspace.oracles.plan import button_plan, cube_plan, drawer_plan, window_plan

    name = env.spec.id
    if kind == "noisy":
        make = {
            "cube": cube_markov.CubeMarkovOracle,
            "button": button_markov.ButtonMarkovOracle,
            "drawer": drawer_markov.DrawerMarkovOracle,
            "window": window_markov.WindowMarkovOracle,
        }
        options: dict[str, Any] = {"min_norm": 0.4}
    else:
        make = {
            "cube": cube_plan.CubePlanOracle,
            "button": button_plan.ButtonPlanOracle,
            "drawer": drawer_plan.DrawerPlanOracle,
            "window": window_plan.WindowPlanOracle,
        }
        options = {"noise": 0.1, "noise_smoothing": 0.5}
    if name.startswith("cube"):
        return {"cube": make["cube"](env=env, **options)}
    if name.startswith("puzzle"):
        return {"button": make["button"](env=env, gripper_always_closed=True, **options)}
    extra = {"cube": {"max_step": 100}} if kind == "noisy" else {}  # scene's cube Markov oracle
    return {task: make[task](env=env, **options, **extra.get(task, {})) for task in make}


def _p_stack(env_id: str) -> float:
    bounds = {"single": (0.0, 0.0), "double": (0.0, 0.25), "triple": (0.05, 0.35),
              "quadruple": (0.1, 0.5)}  # fmt: skip
    for word, (low, high) in bounds.items():
        if word in env_id:
            return 0.0 if high == 0.0 else float(np.random.uniform(low, high))
    return 0.5  # scene (puzzles have no cubes to stack)


def manipulation_episode(
    env: Any, recipe: Recipe, seed: int, oracles: dict[str, Any]
) -> dict[str, np.ndarray]:
    ob, info = env.reset(seed=seed)
    p_stack = _p_stack(recipe.env_id)
    xi = np.random.uniform(0, 0.1) if recipe.kind == "noisy" else 0.0
    agent = oracles[info["privileged/target_task"]]
    agent.reset(ob, info)
    rows: dict[str, list] = {k: [] for k in _row_keys(env)}
    done = False
    while not done:
        if np.random.rand() < recipe.p_random_action:  # the env's action space is a new Box
            space = env.action_space  # at each access, so its own seed would not hold
            action = np.random.uniform(space.low, space.high).astype(np.float32)
        else:
            action = np.asarray(agent.select_action(ob, info))
            if recipe.kind == "noisy":
                action = action + np.random.normal(0, [xi, xi, xi, 3 * xi, 10 * xi], action.shape)
        action = np.clip(action, -1, 1)
        next_ob, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        if agent.done:  # the oracle finished its subtask: the env draws the next target
            agent_ob, agent_info = env.unwrapped.set_new_target(p_stack=p_stack)
            agent = oracles[agent_info["privileged/target_task"]]
            agent.reset(agent_ob, agent_info)
        _append_row(rows, ob, action, done, info)
        ob = next_ob
    return _stack(rows)


def maze_cells(maze_map: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(free cells, goal cells): OGBench's goals are free cells that are not the middle of a
    straight corridor (junctions, corners, dead ends)."""
    free, goals = [], []
    for i, j in zip(*np.nonzero(maze_map == 0), strict=True):
        cell = (int(i), int(j))
        free.append(cell)
        up_down = maze_map[i - 1, j] == 0 and maze_map[i + 1, j] == 0
        left_right = maze_map[i, j - 1] == 0 and maze_map[i, j + 1] == 0
        vertical = up_down and maze_map[i, j - 1] == 1 and maze_map[i, j + 1] == 1
        horizontal = left_right and maze_map[i - 1, j] == 1 and maze_map[i + 1, j] == 1
        if not (vertical or horizontal):
            goals.append(cell)
    return free, goals


def navigate_episode(env: Any, recipe: Recipe, seed: int) -> dict[str, np.ndarray]:
    maze = env.unwrapped
    free, goals = maze_cells(maze.maze_map)
    init_ij = free[np.random.randint(len(free))]
    goal_ij = goals[np.random.randint(len(goals))]
    ob, _ = env.reset(seed=seed, options={"task_info": {"init_ij": init_ij, "goal_ij": goal_ij}})
    rows: dict[str, list] = {k: [] for k in _row_keys(env)}
    done = False
    while not done:
        subgoal_xy, _ = maze.get_oracle_subgoal(maze.get_xy(), maze.cur_goal_xy)
        direction = subgoal_xy - maze.get_xy()
        action = direction / (np.linalg.norm(direction) + 1e-6)  # the point agent's "actor"
        action = np.clip(action + np.random.normal(0, 0.5, action.shape), -1, 1)
        next_ob, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        if info["success"]:
            maze.set_goal(goals[np.random.randint(len(goals))])
        _append_row(rows, ob, action, done, info)
        ob = next_ob
    return _stack(rows)


def _row_keys(env: Any) -> tuple[str, ...]:
    keys = ("observations", "actions", "terminals", "qpos", "qvel")
    return (*keys, "button_states") if hasattr(env.unwrapped, "_cur_button_states") else keys


def _append_row(rows: dict[str, list], ob: Any, action: Any, done: bool, info: dict) -> None:
    rows["observations"].append(ob)
    rows["actions"].append(action)
    rows["terminals"].append(done)
    rows["qpos"].append(info["prev_qpos"])
    rows["qvel"].append(info["prev_qvel"])
    if "button_states" in rows:
        rows["button_states"].append(info["prev_button_states"])


_DTYPES = {"terminals": bool, "button_states": np.int64}  # the rest float32, as OGBench writes


def _stack(rows: dict[str, list]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=_DTYPES.get(k, np.float32)) for k, v in rows.items()}


# -- a whole build ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OGBenchBuild:
    train: Path
    val: Path
    transitions: int  # rows of the training file
    written: bool  # False: both files were there already and were kept
    seconds: float  # time spent generating in this call


def build_ogbench(
    name: str,
    out: Path | None = None,
    *,
    episodes: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    episode_steps: int | None = None,
    workers: int = 1,
) -> OGBenchBuild:
    """Make `<name>-v0.npz` and `<name>-v0-val.npz` in `out` (default: where `ogbench:` looks),
    the episodes collected by `workers` processes."""
    from diffrl.data.ogbench import dataset_dir

    recipe = recipe_for(name, episodes)
    if workers < 1:
        raise BuildError(f"--workers: expected at least 1, found {workers}.")
    if episode_steps is not None:  # shorter episodes: only for quick tests of the machinery
        recipe = dataclasses.replace(recipe, episode_steps=episode_steps)
    root = Path(out).expanduser() if out is not None else dataset_dir()
    train, val = root / f"{recipe.name}-v0.npz", root / f"{recipe.name}-v0-val.npz"
    if not overwrite and (train.exists() or val.exists()):
        return _kept(recipe, seed, train, val)
    work = _locked_work_dir(root / ".diffrl-build" / f"ogbench-{recipe.name}-seed{seed}")
    try:
        _check_work(work, recipe, seed)
        start = time.perf_counter()
        chunks = _generate(work, recipe, seed, progress, workers)
        meta = _metadata(recipe, seed)
        rows = _write_split(train, chunks[: _chunk_count(recipe.episodes)], meta)
        _write_split(val, chunks[_chunk_count(recipe.episodes) :], meta)
        for chunk in chunks:  # both files are written: the chunks (uncompressed) only cost disk
            chunk.unlink()
        built = OGBenchBuild(train, val, rows, True, time.perf_counter() - start)
    finally:
        lock.release(work)
    _remove_work_dir(work)
    return built


def _remove_work_dir(work: Path) -> None:
    """After a finished build nothing in the work folder is needed (the recipe is in the files,
    the lock is released): leave no trace beside the two files."""
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another build's work folder is there
        work.parent.rmdir()


def _locked_work_dir(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(work)
    except lock.LockedError as exc:
        raise BuildError(f"{exc}; wait for it to finish (re-running later resumes it).") from None
    return work


def build_record(recipe: Recipe, seed: int) -> dict[str, Any]:
    """What identifies a build: its recipe and seed (the work folder and each file record it)."""
    return {"recipe": dataclasses.asdict(recipe), "seed": seed}


def _kept(recipe: Recipe, seed: int, train: Path, val: Path) -> OGBenchBuild:
    """Both files there: kept if this same build made them (or OGBench did), else refused."""
    if not (train.exists() and val.exists()):
        there = train if train.exists() else val
        raise BuildError(
            f"{there} exists but its other split does not; pass --overwrite to make both again "
            f"(nothing was changed)."
        )
    with np.load(train) as file:
        rows = len(file["terminals"])
        made = json.loads(str(file["diffrl_build"])) if "diffrl_build" in file.files else None
    wanted = build_record(recipe, seed)
    if made is not None and {k: made[k] for k in wanted} != wanted:
        raise BuildError(
            f"{train} was built with {made['recipe']} and seed {made['seed']}, not as asked "
            f"({wanted['recipe']}, seed {seed}); pass --overwrite to replace it."
        )
    return OGBenchBuild(train, val, rows, False, 0.0)


def _check_work(work: Path, recipe: Recipe, seed: int) -> None:
    """A work folder continues only the build that started it (same recipe, same seed)."""
    wanted = build_record(recipe, seed)
    found = fileio.claim_record(work / "recipe.json", wanted)
    if found is not None:
        raise BuildError(
            f"{work}: holds a build of {found}, not of {wanted}; remove that folder to "
            f"start this one (or re-run with the settings it was started with)."
        )


def _chunk_count(episodes: int) -> int:
    return -(-episodes // CHUNK_EPISODES)


def _chunk_ranges(recipe: Recipe) -> list[range]:
    """Episode index ranges per chunk; training chunks first, then validation chunks."""
    total = recipe.episodes + recipe.val_episodes
    bounds = [*range(0, recipe.episodes, CHUNK_EPISODES), recipe.episodes]
    bounds += [*range(recipe.episodes + CHUNK_EPISODES, total, CHUNK_EPISODES), total]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _generate(work: Path, recipe: Recipe, seed: int, progress: bool, workers: int) -> list[Path]:
    from tqdm import tqdm

    ranges = _chunk_ranges(recipe)
    paths = [work / f"chunk-{i:05d}.npz" for i in range(len(ranges))]
    todo = [(p, r) for p, r in zip(paths, ranges, strict=True) if not p.exists()]
    total, left = sum(map(len, ranges)), sum(len(r) for _, r in todo)
    bar = tqdm(total=total, initial=total - left, desc=recipe.name, unit="episode",
               disable=not progress)  # fmt: skip
    try:
        if workers > 1 and len(todo) > 1:
            _generate_in_processes(todo, recipe, seed, workers, bar.update)
        else:
            for path, episodes in todo:
                make_chunk(recipe, seed, path, episodes, bar.update)
    finally:
        bar.close()
        while _ENVS:  # this process's envs (a worker's go with its process)
            _ENVS.popitem()[1][0].close()
    return paths


_ENVS: dict[Recipe, tuple[Any, Callable[..., dict]]] = {}  # per process: env and oracles, reused


def make_chunk(
    recipe: Recipe, seed: int, path: Path, episodes: range, tick: Callable[[], Any] | None = None
) -> int:
    """Collect episodes `episodes` (each seeded from (seed, index)) into the chunk file `path`;
    also the entry point of a worker process. Returns the number of episodes."""
    if recipe not in _ENVS:
        env = make_collection_env(recipe)
        _ENVS[recipe] = (env, _actor(env, recipe))
    env, actor = _ENVS[recipe]
    parts = []
    for index in episodes:
        parts.append(collect_episode(env, actor, recipe, episode_seed(seed, index)))
        if tick is not None:
            tick()
    fileio.write_atomic(path, _npz_bytes(_concat(parts), compressed=False))
    return len(episodes)


def _generate_in_processes(
    todo: list[tuple[Path, range]], recipe: Recipe, seed: int, workers: int, tick: Callable
) -> None:
    """Chunks in `workers` processes (spawned: JAX is loaded here and must not be forked);
    episodes are seeded by index, so the files equal a one-process build's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(make_chunk, recipe, seed, p, r) for p, r in todo]
        for future in as_completed(futures):
            tick(future.result())


def _actor(env: Any, recipe: Recipe) -> Callable[..., dict[str, np.ndarray]]:
    if recipe.kind == "navigate":
        return navigate_episode
    oracles = _manipulation_oracles(env, recipe.kind)  # made once, as OGBench does; reset per task
    return functools.partial(manipulation_episode, oracles=oracles)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _npz_bytes(arrays: dict[str, np.ndarray], compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _metadata(recipe: Recipe, seed: int) -> dict[str, np.ndarray]:
    """0-d entries beside OGBench's keys (its reader ignores them): what made the file."""
    from importlib.metadata import version

    made = {**build_record(recipe, seed), "ogbench": version("ogbench")}
    return {"diffrl_build": np.asarray(json.dumps(made, sort_keys=True))}


def _write_split(path: Path, chunks: list[Path], meta: dict[str, np.ndarray]) -> int:
    parts = []
    for chunk in chunks:
        with np.load(chunk) as file:
            parts.append({k: file[k] for k in file.files})
    arrays = _concat(parts)
    fileio.write_atomic(path, _npz_bytes({**arrays, **meta}, compressed=True))
    return len(arrays["terminals"])
