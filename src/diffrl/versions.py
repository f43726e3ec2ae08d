"""The versions of the software a result was computed with, for the records that describe it.

A dataset build is deterministic for fixed software on one kind of CPU, not across releases of
the numeric libraries nor across instruction sets (XLA compiles other vector code for AVX2 than
for AVX-512, and SAC's trajectory drifts from there); without both in its record, a rebuild that
differs cannot be told apart from a fault.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# vector extensions that change the code XLA emits for the CPU, widest first
SIMD = ("amx_tile", "avx512f", "avx2", "sse4_2")

# the distributions whose release can change what a build or a run computes
PACKAGES = ("diffrl", "jax", "jaxlib", "numpy", "optax", "flax", "gymnasium", "mujoco", "minari")


def software_versions() -> dict[str, str]:
    """{"python": ..., package: version} for each of PACKAGES that is installed."""
    found = {"python": platform.python_version(), "cpu_simd": cpu_simd()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def cpu_simd(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The vector extensions of SIMD this CPU has (from `cpuinfo`), e.g. "avx512f,avx2";
    "unknown" where the file is missing (not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return ",".join(f for f in SIMD if f in flags) or "none"
