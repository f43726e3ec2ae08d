"""benchmarks/gpu.py --tiny: the prepared GPU run works end to end, on CPU, in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def test_tiny_gpu_script_prints_every_measurement(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    kinds = [x["kind"] for x in lines]
    # --tiny times 2 vmapped seeds only (the full run adds 1 and 10), to stay seconds long
    assert kinds == ["machine"] + ["train"] * 4 + ["latency", "run"]
    assert lines[0]["backend"] == "cpu" and lines[0]["tiny"] is True
    trains = lines[1:5]
    assert [(x["algo"], x["seeds"]) for x in trains] == [
        ("dql", 2),
        ("dtql", 2),
        ("diffcps", 2),
        ("fql", 2),
    ]
    for x in trains:
        assert x["steps_per_s"] > 0
        assert x["agent_steps_per_s"] == pytest.approx(x["seeds"] * x["steps_per_s"], rel=1e-3)
    latency = lines[5]
    assert 0 < latency["latency_ms_b1"] < latency["latency_ms_k50"]  # 50 ranked cost more
    run = lines[6]
    assert run["steps"] == 20 and run["evaluations"] == 2
    assert run["train_s"] > 0 and run["eval_s"] > 0
    assert run["train_s"] + run["eval_s"] == pytest.approx(run["wall_s"], abs=0.2)
    assert (tmp_path / "w" / "run" / "summary.json").is_file()
