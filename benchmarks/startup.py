"""Start-up time of the light `diffrl` commands, one JSON line per command.

    PYTHONPATH=src python benchmarks/startup.py [--repeats 7] [--module]

Times `diffrl --help`, `diffrl data list` and `diffrl info FILE.npz` as whole processes (from
spawn to exit, what a user waits for), `--repeats` times each after one untimed warm-up run (so
the first run's cold file cache does not count), and reports min / median / max seconds. The
npz is a 6-row dataset written to a temporary directory; `data list` lists an empty Minari root
in that directory, so the numbers do not depend on the datasets this machine holds.

The command is the `diffrl` console script next to this interpreter (or `python -m diffrl.cli`
with `--module`, or where there is no script); it imports the `diffrl` found first on
PYTHONPATH, which each line reports. `heavy_imports` lists which of jax, flax, optax and ray the
command imported, measured in a separate run of the same command through a small wrapper that
reads `sys.modules` after `diffrl.cli.main` returns (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEAVY = ("jax", "flax", "optax", "ray")
PROBE = """
import json, sys
import diffrl
from diffrl.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print("PROBE=" + json.dumps({{"heavy": heavy, "diffrl": diffrl.__file__, "code": code}}))
"""


def cpu_model() -> str:
    """The "Model name" line of lscpu (the CPU the numbers were measured on)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def write_tiny_npz(path: Path, rows: int = 6) -> Path:
    """A D4RL-layout npz (observations, actions, rewards, terminals) of a few rows."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        observations=rng.normal(size=(rows, 3)).astype(np.float32),
        actions=rng.uniform(-1, 1, (rows, 2)).astype(np.float32),
        rewards=rng.normal(size=rows).astype(np.float32),
        terminals=np.zeros(rows, bool),
    )
    return path


def launcher(module: bool) -> list[str]:
    script = Path(sys.executable).parent / "diffrl"
    if module or not script.exists():
        return [sys.executable, "-m", "diffrl.cli"]
    return [str(script)]


def time_command(cmd: list[str], repeats: int) -> list[float]:
    """Wall seconds of `repeats` whole runs of `cmd`, after one untimed warm-up run."""
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def probe_imports(argv: list[str]) -> dict:
    """Run the command through `diffrl.cli.main` in a fresh interpreter and read sys.modules."""
    code = PROBE.format(heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE=")]
    if not lines:
        raise SystemExit(f"import probe of {argv} failed: {proc.stderr.strip()[-300:]}")
    return json.loads(lines[-1].removeprefix("PROBE="))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--module", action="store_true", help="time `python -m diffrl.cli`")
    args = p.parse_args()
    cpu, base = cpu_model(), launcher(args.module)
    with tempfile.TemporaryDirectory() as tmp:
        npz = write_tiny_npz(Path(tmp) / "tiny.npz")
        (Path(tmp) / "minari").mkdir()
        commands = {
            "diffrl --help": ["--help"],
            "diffrl data list": ["data", "list", "--out", str(Path(tmp) / "minari")],
            "diffrl info FILE.npz": ["info", str(npz)],
        }
        for name, argv in commands.items():
            times = time_command(base + argv, args.repeats)
            probe = probe_imports(argv)
            print(json.dumps({
                "command": name, "min_s": round(min(times), 3),
                "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                "repeats": args.repeats, "heavy_imports": probe["heavy"],
                "launcher": " ".join(base),
                "cpu": cpu, "cores": os.cpu_count(), "diffrl": probe["diffrl"],
            }))  # fmt: skip


if __name__ == "__main__":
    main()
