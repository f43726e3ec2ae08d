"""Per-task presets (presets/): each algorithm's table against the spec's rows, every row a valid
configuration, the lookup by dataset name and its errors."""

from __future__ import annotations

import dataclasses

import pytest

from diffrl.agents import diffcps, dtql
from diffrl.presets import TABLES, get_preset, preset_name_for_dataset, preset_names
from diffrl.presets import dtql as dtql_presets
from diffrl.run import agent_config, resolve
from diffrl.run.settings import RUN_KEYS

# rows of ALGORITHMS.md §1.9 (Diffusion-QL): actor lr, η, max-Q backup, reward_tune, epochs, gn,
# top_k, eval episodes
DQL_ROWS = {
    "walker2d-medium-v2": (3e-4, 1.0, False, "no", 2000, 1.0, 1, 10),
    "antmaze-medium-play-v0": (1e-3, 2.0, True, "cql_antmaze", 1000, 2.0, 1, 100),
    "pen-cloned-v1": (3e-5, 0.1, False, "normalize", 1000, 8.0, 2, 100),
    "kitchen-complete-v0": (3e-4, 0.005, False, "no", 250, 9.0, 2, 100),
}
DQL_COLUMNS = ("actor_lr", "eta", "max_q_backup", "reward_transform", "epochs", "grad_norm",
               "top_k", "eval_episodes")  # fmt: skip


def test_dql_presets_match_the_spec_rows():
    assert len(preset_names("dql")) == 20
    for name, row in DQL_ROWS.items():
        assert get_preset("dql", name) == dict(zip(DQL_COLUMNS, row, strict=True)), name


@pytest.mark.parametrize("algo", sorted(TABLES))
def test_every_row_resolves_to_a_valid_run(algo):
    for name in preset_names(algo):
        cfg = resolve({"algo": algo, "dataset": f"d4rl:{name}"})
        agent_config(cfg)  # every value typed and in range
        assert cfg.preset == name


def test_lookup_errors_name_what_is_known():
    with pytest.raises(KeyError, match="no presets for algorithm 'bc'.*'dql'"):
        get_preset("bc", "hopper-medium-v2")
    with pytest.raises(KeyError, match="unknown dql preset 'hopper-easy-v2'.*hopper-medium-v2"):
        get_preset("dql", "hopper-easy-v2")
    assert preset_names("bc") == []
    row = get_preset("dql", "hopper-medium-v2")
    row["eta"] = 99.0  # a copy: the table itself does not change
    assert get_preset("dql", "hopper-medium-v2")["eta"] == 1.0


def test_preset_names_of_dataset_specs(tmp_path):
    assert preset_name_for_dataset("d4rl:hopper-medium-v2") == "hopper-medium-v2"
    assert preset_name_for_dataset(str(tmp_path / "walker2d-medium-replay-v2.hdf5")) == (
        "walker2d-medium-replay-v2"
    )
    assert preset_name_for_dataset(str(tmp_path / "tiny-hopper.hdf5")) is None
    assert preset_name_for_dataset("minari:diffrl/hopper-v5/medium-v0") is None


def test_td3bc_and_iql_presets():
    assert len(preset_names("td3bc")) == 15
    assert get_preset("td3bc", "hopper-medium-replay-v2")["alpha"] == 2.5
    mujoco = get_preset("iql", "hopper-medium-v2")
    assert (mujoco["expectile"], mujoco["temperature"]) == (0.7, 3.0)
    assert mujoco["reward_transform"] == "iql_locomotion"
    ant = get_preset("iql", "antmaze-large-play-v0")
    assert (ant["expectile"], ant["temperature"], ant["reward_transform"]) == (
        0.9,
        10.0,
        "iql_antmaze",
    )
    assert ant["eval_episodes"] == 100
    for name in ("kitchen-partial-v0", "pen-human-v1"):
        p = get_preset("iql", name)
        assert (p["expectile"], p["temperature"], p["actor_dropout"]) == (0.7, 0.5, 0.1)
    for algo in ("td3bc", "iql"):  # every row is a valid agent config
        for name in preset_names(algo):
            cfg = resolve({"algo": algo, "dataset": "x.npz", "preset": name})
            agent_config(cfg)
            assert cfg.steps == 1_000_000


def test_diffcps_presets_cover_the_spec_table():
    names = preset_names("diffcps")
    assert len(names) == 15
    assert get_preset("diffcps", "walker2d-medium-v2")["kappa"] == 0.03
    large = get_preset("diffcps", "antmaze-large-play-v0")
    assert large["policy_freq"] == 4 and large["lambda_min"] == 0.3
    assert large["lambda_init"] == 0.5 and large["max_q_backup"] is True
    fields = {f.name for f in dataclasses.fields(diffcps.Config)} | set(RUN_KEYS)
    for name in names:
        preset = get_preset("diffcps", name)
        assert set(preset) - {"epochs"} <= fields, name
        dql_row = get_preset("dql", name)
        for col in ("actor_lr", "max_q_backup", "reward_transform", "epochs", "grad_norm"):
            assert preset[col] == dql_row[col], (name, col)
    cfg = resolve({"algo": "diffcps", "dataset": "d4rl:hopper-medium-v2", "steps": 10})
    assert cfg.agent["kappa"] == 0.05 and cfg.steps == 10
    assert agent_config(cfg).kappa == 0.05


def test_dtql_presets_cover_all_rows_with_valid_fields():
    presets = dtql_presets.PRESETS
    assert len(presets) == 26
    fields = {f.name for f in dataclasses.fields(dtql.Config)}
    for name, preset in presets.items():
        agent = {k: v for k, v in preset.items() if k not in ("epochs", *RUN_KEYS)}
        assert set(agent) <= fields, name
        assert "gamma" not in preset  # the official `gamma` is the NLL weight
        assert preset["epochs"] == dtql_presets.MAIN_EPOCHS[name] + 50
    assert presets["antmaze-umaze-diverse-v2"] == presets["antmaze-umaze-diverse-v0"]
    assert presets["pen-human-v1"]["expectile"] == 0.9 and presets["pen-human-v1"]["alpha"] == 1500
    assert presets["hopper-medium-v2"]["eval_episodes"] == 10
    assert dtql_presets.BATCH_SIZE["antmaze-large-play-v2"] == 2048


def test_dtql_preset_resolution_for_antmaze():
    cfg = resolve({"algo": "dtql", "dataset": "d4rl:antmaze-medium-play-v2"})
    assert cfg.reward_transform == "iql_antmaze" and cfg.steps == 450_000
    assert cfg.eval_episodes == 100
    acfg = agent_config(cfg)
    assert acfg.nll_weight == 1.0 and acfg.expectile == 0.9 and acfg.total_steps == 450_000


LOCOMOTION = [f"{e}-{d}-v2" for e in ("halfcheetah", "hopper", "walker2d")
              for d in ("medium", "medium-replay", "medium-expert")]  # fmt: skip


def test_dtql_default_alpha_is_the_locomotion_presets_most_common_value():
    alphas = [get_preset("dtql", name)["alpha"] for name in LOCOMOTION]
    assert dtql.Config().alpha == max(set(alphas), key=alphas.count) == 5.0
    assert alphas.count(5.0) == 6


def test_iql_without_preset_scales_rewards_as_its_locomotion_runs():
    no_preset = resolve({"algo": "iql", "dataset": "mine.npz"})
    assert no_preset.preset is None and no_preset.reward_transform == "iql_locomotion"
    assert get_preset("iql", "hopper-medium-v2")["reward_transform"] == "iql_locomotion"
    kept = resolve({"algo": "iql", "dataset": "mine.npz", "reward_transform": "no"})
    assert kept.reward_transform == "no"
    assert resolve({"algo": "iql", "dataset": "bandit:corners"}).reward_transform == "no"
    assert resolve({"algo": "dql", "dataset": "mine.npz"}).reward_transform == "no"
    antmaze = resolve({"algo": "iql", "dataset": "d4rl:antmaze-umaze-v2"})
    assert antmaze.reward_transform == "iql_antmaze"  # a preset's transform wins


def test_fql_presets_are_the_readme_commands_for_every_task():
    cube = resolve({"algo": "fql", "dataset": "ogbench:cube-single-play-singletask-task3-v0"})
    assert cube.preset == "cube-single-play-singletask-task3-v0"
    assert (cube.agent, cube.steps, cube.eval_every, cube.eval_episodes) == (
        {"alpha": 300.0}, 1_000_000, 100_000, 50
    )  # fmt: skip
    assert get_preset("fql", "puzzle-4x4-play-singletask-v0")["alpha"] == 1000.0
    giant = get_preset("fql", "antmaze-giant-navigate-singletask-task5-v0")
    assert (giant["alpha"], giant["q_agg"], giant["gamma"]) == (10.0, "min", 0.995)
    assert len(preset_names("fql")) == 10 * 6  # ten environments × (default task + five)
    assert (
        preset_name_for_dataset("ogbench:scene-play-singletask-v0:val")
        == "scene-play-singletask-v0"
    )
