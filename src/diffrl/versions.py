"""The versions of the software a result was computed with, for the records that describe it.

A dataset build is deterministic for fixed software on one kind of machine, not across releases
of the numeric libraries; without the versions in its record, a rebuild that differs cannot be
told apart from a fault.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

# the distributions whose release can change what a build or a run computes
PACKAGES = ("diffrl", "jax", "jaxlib", "numpy", "optax", "flax", "gymnasium", "mujoco", "minari")


def software_versions() -> dict[str, str]:
    """{"python": ..., package: version} for each of PACKAGES that is installed."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
