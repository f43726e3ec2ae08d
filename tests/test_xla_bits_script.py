"""benchmarks/xla_bits.py: the fingerprints that locate where two machines' builds part must be
stable on one machine and must see a change in the SAC computation."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "xla_bits.py"


def _run(*args: str) -> list[dict]:
    cmd = [sys.executable, str(SCRIPT), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_fingerprints_repeat_per_flag_set_and_name_the_cpu():
    first, second = _run("--flags", "", "", "--sac-updates", "2")
    assert first == second
    assert set(first) >= {"cpu_model", "cpu_simd", "sum", "matmul", "tanh", "exp", "sac_update"}
    assert first["flags"] == "" and first["kind"] == "xla_bits"


def test_sac_fingerprint_changes_with_the_updates_run():
    spec = importlib.util.spec_from_file_location("xla_bits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPT.parent))  # as `python xla_bits.py` does, for `import startup`
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert module._sac_probe(1) != module._sac_probe(2)
