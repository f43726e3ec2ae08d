"""`diffrl` end to end on a tiny D4RL-format Hopper file, with one evaluation episode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import diffrl
from diffrl.cli import main

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)

TINY = ["--set", "hidden=16", "--set", "n_steps=2", "--set", "candidates=4"]


def write_hopper_file(path, n=300, seed=0):
    """A small file in D4RL's layout for Hopper-v4 (11-dim observations, 3-dim actions)."""
    rng = np.random.default_rng(seed)
    timeouts = np.zeros(n, bool)
    timeouts[99::100] = True
    terminals = np.zeros(n, bool)
    terminals[150] = True
    with h5py.File(path, "w") as f:
        f["observations"] = rng.standard_normal((n, 11)).astype(np.float32)
        f["actions"] = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        f["rewards"] = rng.standard_normal((n, 1)).astype(np.float32)
        f["terminals"] = terminals
        f["timeouts"] = timeouts
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_hopper_file(root / "tiny-hopper.hdf5")
    out = root / "run"
    code = main(
        [
            "train",
            "--algo",
            "dql",
            "--dataset",
            str(data),
            "--env",
            "Hopper-v4",
            "--steps",
            "20",
            "--eval-every",
            "10",
            "--eval-episodes",
            "1",
            "--steps-per-call",
            "10",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--quiet",
            *TINY,
        ]
    )
    assert code == 0
    return data, out


def test_train_writes_a_complete_run(trained, capsys):
    _, out = trained
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 2
    final = summary["final"]
    assert final["env_id"] == "Hopper-v4" and final["episodes"] == 1
    assert np.isfinite(final["return_mean"]) and final["length_mean"] >= 1
    assert "score" not in final  # a file of unknown origin has no reference returns
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["hidden"] == 16 and config["evaluation"]["env_id"] == "Hopper-v4"
    assert config["dataset"]["transitions"] == 300 - 3  # timeouts at 99 and 199, last row


def test_resume_of_a_finished_run_changes_nothing(trained, capsys):
    _, out = trained
    before = (out / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "metrics.jsonl").read_text() == before


def test_eval_writes_a_new_file(trained, capsys):
    _, out = trained
    assert main(["eval", str(out), "--episodes", "1", "--selection", "argmax"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 1 and result["step"] == 20
    assert len(list(out.glob("eval-final-*.json"))) == 1


def test_info_prints_the_facts(trained, capsys):
    data, _ = trained
    assert main(["info", str(data), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["transitions"] == 297 and info["obs_dim"] == 11 and info["action_dim"] == 3
    assert info["timeouts"] == 0 and info["terminals"] == 1


def test_info_knows_reference_returns(trained, tmp_path, monkeypatch, capsys):
    data, _ = trained
    shutil.copy(data, tmp_path / "hopper_medium-v2.hdf5")
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    assert main(["info", "d4rl:hopper-medium-v2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ref_min_score"] == pytest.approx(-20.272305)
    assert info["ref_max_score"] == pytest.approx(3234.3)


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.hdf5")]) == 2
    err = capsys.readouterr().err
    assert "missing.hdf5" in err and "Traceback" not in err
    bad = tmp_path / "bad.hdf5"
    with h5py.File(bad, "w") as f:
        f["observations"] = np.zeros((10, 3), np.float32)
    code = main(["train", "--dataset", str(bad), "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.hdf5" in err and "actions" in err
    assert not (tmp_path / "r").exists()  # nothing was created before the data were checked


def test_train_refuses_an_existing_run(trained, capsys):
    data, out = trained
    code = main(["train", "--dataset", str(data), "--out", str(out), "--quiet"])
    assert code == 2 and "already holds a run" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("diffrl")
    if exe is None:
        pytest.skip("package not installed with pip (run `pip install -e .`)")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "demo" in proc.stdout and "train" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "diffrl.cli", "info", "bandit:corners", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["transitions"] == 10_000


def test_bad_settings_are_one_clear_line(tmp_path, capsys):
    assert main(["info", "bandit:nope"]) == 2
    assert "unknown bandit task 'nope'" in capsys.readouterr().err
    out = tmp_path / "r"
    assert main(["train", "--dataset", "bandit:corners", "--steps", "0", "--out", str(out)]) == 2
    assert "setting 'steps': Input should be greater than 0; found 0" in capsys.readouterr().err
    assert main(["train", "--dataset", "bandit:corners", "--set", "etta=1", "--out", str(out)]) == 2
    assert "dql: unknown setting 'etta'; valid settings:" in capsys.readouterr().err
    for bad, says in (
        ("hidden=1.5", "setting 'hidden': Input should be a valid integer"),
        ("actor_lr=fast", "setting 'actor_lr': Input should be a valid number"),
        ("gamma=1.01", "setting 'gamma': Input should be less than or equal to 1"),
        ("selection=best", "Input should be 'none', 'softmax' or 'argmax'"),
    ):
        assert main(["train", "--dataset", "bandit:corners", "--set", bad, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err  # one line, no traceback
    assert (
        main(
            [
                "train",
                "--dataset",
                "bandit:corners",
                "--preset",
                "hopper-mediun-v2",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "unknown dql preset" in capsys.readouterr().err
    assert not out.exists()  # every refusal came before anything was written


def test_set_values_are_typed_in_config_json(tmp_path):
    out = tmp_path / "typed"
    code = main(["train", "--algo", "diffbc", "--dataset", "bandit:corners", "--steps", "10",
                 "--eval-every", "10", "--steps-per-call", "5", "--batch-size", "8", "--quiet",
                 "--out", str(out), "--set", "lr_decay=false", "--set", "hidden=8",
                 "--set", "n_steps=2", "--set", "candidates=3"])  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["agent"] == {"lr_decay": False, "hidden": 8, "n_steps": 2}
    assert config["agent"]["lr_decay"] is False  # "false" is no longer a truthy string
    assert config["run"]["candidates"] == 3  # a run setting given by --set (default 1), typed


def test_data_commands_are_part_of_diffrl(tmp_path, capsys):
    assert main(["data", "list", "--out", str(tmp_path)]) == 0
    assert "no datasets" in capsys.readouterr().out
    assert main(["data", "export", "diffrl/nope-v5/medium-v0", str(tmp_path / "x.hdf5"),
                 "--out", str(tmp_path)]) == 2  # fmt: skip
    assert "diffrl data: error:" in capsys.readouterr().err


HEAVY = ("jax", "flax", "optax", "ray")
IMPORT_PROBE = """
import json, sys
from diffrl.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help exits from argparse
    code = exc.code
print("HEAVY=" + json.dumps([m for m in {heavy!r} if m in sys.modules]))
sys.exit(code)
"""


def _heavy_imports_of(argv: list[str]) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run `diffrl ARGV` in a fresh interpreter; the heavy packages it imported, and the run."""
    src = str(Path(diffrl.__file__).parents[1])  # the tree under test, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    line = [x for x in proc.stdout.splitlines() if x.startswith("HEAVY=")][-1]
    return json.loads(line.removeprefix("HEAVY=")), proc


def test_light_commands_do_not_import_jax_or_ray(tmp_path):
    npz = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, observations=rng.normal(size=(6, 3)).astype(np.float32),
             actions=rng.uniform(-1, 1, (6, 2)).astype(np.float32),
             rewards=np.ones(6, np.float32), terminals=np.zeros(6, bool))  # fmt: skip
    commands = [["--help"], ["data", "--help"], ["data", "list", "--out", str(tmp_path)],
                ["info", str(npz), "--json"], ["info", str(tmp_path / "missing.npz")]]  # fmt: skip
    for argv in commands:
        heavy, proc = _heavy_imports_of(argv)
        assert heavy == [], f"diffrl {' '.join(argv)} imported {heavy}"
        assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2 and "missing.npz" in proc.stderr  # the error path stays light
    heavy, proc = _heavy_imports_of(["info", str(npz), "--json"])
    assert proc.returncode == 0 and '"transitions": 5' in proc.stdout
