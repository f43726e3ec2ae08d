"""benchmarks/gpu.py --tiny: the prepared GPU run works end to end, on CPU, in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu.py"
# runs gpu.py, then prints the distributions its imports reached (the GPU machine has no index)
WRAPPER = """
import importlib.metadata, json, os, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))  # as `python gpu.py` does
try:
    runpy.run_path(script, run_name="__main__")
finally:
    owners = importlib.metadata.packages_distributions()
    tops = {name.split(".")[0] for name in sys.modules}
    dists = sorted({d for t in tops for d in owners.get(t, [])})
    print(json.dumps({"kind": "imported", "dists": dists}))
"""


def test_tiny_gpu_script_prints_every_measurement(tmp_path):
    # most XLA optimisations off: --tiny's rates mean nothing, and compiling is its whole cost
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    command = [sys.executable, "-c", WRAPPER, str(SCRIPT), "--tiny", "--work", str(tmp_path / "w")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    imported = lines.pop()["dists"]
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
        # both are printed rounded to 0.01: on a slow machine that rounding exceeds 0.1 %
        rounding = 0.005 * (x["seeds"] + 1)
        assert x["agent_steps_per_s"] == pytest.approx(
            x["seeds"] * x["steps_per_s"], rel=1e-3, abs=rounding
        )
    latency = lines[5]
    assert 0 < latency["latency_ms_b1"] < latency["latency_ms_k50"]  # 50 ranked cost more
    run = lines[6]
    assert run["steps"] == 20 and run["evaluations"] == 2
    assert run["train_s"] > 0 and run["eval_s"] > 0
    assert run["train_s"] + run["eval_s"] == pytest.approx(run["wall_s"], abs=0.2)
    assert (tmp_path / "w" / "run" / "summary.json").is_file()
    assert_gpu_image_and_wheels_cover(imported)


def assert_gpu_image_and_wheels_cover(imported: list[str]) -> None:
    """Everything gpu.py imported is in the GPU image or among gpu_wheels.py's wheels."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import gpu_wheels
    finally:
        sys.path.remove(str(BENCHMARKS))
    listed = gpu_wheels.IMAGE + gpu_wheels.WHEELS + gpu_wheels.OPTIONAL
    there = {gpu_wheels.canonical(x) for x in listed}
    found = {gpu_wheels.canonical(x) for x in imported} - {"diffrl"}
    assert "gymnasium" in found and "mujoco" in found  # the wrapper did see the imports
    missing = sorted(found - there)
    assert missing == [], f"gpu.py imports {missing}: not in the GPU image nor in gpu_wheels.WHEELS"
