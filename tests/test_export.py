"""diffrl export: a policy as a jax.export file that runs with jax and numpy alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from diffrl import load_policy
from diffrl.cli import main
from diffrl.export import ExportedPolicy, export_policy
from diffrl.run import RunError

TRAIN = ["train", "--algo", "dql", "--set", "hidden=16", "--set", "n_steps=3", "--batch-size",
         "32", "--steps", "20", "--eval-every", "10", "--steps-per-call", "10",
         "--eval-episodes", "2", "--quiet", "--env", "Pendulum-v1"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    n = 300
    f32 = np.float32
    np.savez(root / "pendulum.npz", observations=rng.normal(size=(n, 3)).astype(f32),
             actions=rng.uniform(-1, 1, (n, 1)).astype(f32),
             rewards=rng.normal(size=n).astype(f32), terminals=np.zeros(n, bool))  # fmt: skip
    assert main([*TRAIN, "--dataset", str(root / "pendulum.npz"), "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.mark.parametrize("plain", [False, True])
def test_exported_actions_equal_load_policy(run_dir, tmp_path, plain):
    out, sidecar = export_policy(run_dir, tmp_path / "p.jaxexport", plain=plain)
    info = json.loads(sidecar.read_text())
    assert (info["obs_dim"], info["action_dim"], info["env_id"], info["step"]) == (
        3, 1, "Pendulum-v1", 20,
    )  # fmt: skip
    assert info["action_choice"]["selection"] == ("none" if plain else "softmax")
    options = {"selection": "none", "candidates": 1} if plain else {}
    ours, exported = load_policy(run_dir, **options), ExportedPolicy(out)
    rng = np.random.default_rng(1)
    for batch in (1, 7, 64):  # the batch size is polymorphic
        obs = rng.normal(size=(batch, 3)).astype(np.float32)
        # the same candidates and picks; the exported program (parameters as constants, a
        # symbolic batch) is fused differently by XLA, so a value may differ in its last bit
        np.testing.assert_allclose(exported(obs), ours(obs), rtol=0, atol=1e-6)
    assert exported(obs[0]).shape == (1,)


def test_loading_needs_only_jax_and_numpy(run_dir, tmp_path):
    out, _ = export_policy(run_dir, tmp_path / "p.jaxexport")
    obs = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    code = f"""
import sys
sys.modules["diffrl"] = None  # importing diffrl now fails: the lines below must not need it
import jax, numpy as np
act = jax.export.deserialize(open({str(out)!r}, "rb").read())
obs = np.load({str(tmp_path / "obs.npy")!r})
np.save({str(tmp_path / "actions.npy")!r},
        np.asarray(act.call(obs.astype(np.float32), jax.random.PRNGKey(0), np.int32(0))))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = load_policy(run_dir)(obs)  # first call: key PRNGKey(0), index 0
    np.testing.assert_allclose(np.load(tmp_path / "actions.npy"), expected, rtol=0, atol=1e-6)


def test_export_refuses_to_replace_and_eval_reads_the_file(run_dir, tmp_path, capsys):
    out = tmp_path / "p.jaxexport"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["export", str(run_dir), "--out", str(out), "--which", "best"]) == 2
    assert "never replaces a file" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == "Pendulum-v1" and result["episodes"] == 2 and result["step"] == 20
    with pytest.raises(SystemExit, match="--which, --candidates would not apply"):
        main(["eval", str(out), "--which", "best", "--candidates", "5"])
    out.write_bytes(before[: len(before) // 2])
    with pytest.raises(RunError, match="not a readable jax.export file"):
        ExportedPolicy(out)
