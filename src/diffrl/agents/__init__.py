"""One module per algorithm, each with Config, State, init, update and act (DESIGN.md)."""

from __future__ import annotations

import importlib
from types import ModuleType

ALGORITHMS = {
    "dql": "diffrl.agents.dql",
    "diffcps": "diffrl.agents.diffcps",
    "dtql": "diffrl.agents.dtql",
    "bc": "diffrl.agents.bc",
    "diffbc": "diffrl.agents.diffbc",
    "cvaebc": "diffrl.agents.cvaebc",
    "td3bc": "diffrl.agents.td3bc",
    "iql": "diffrl.agents.iql",
}


def get_agent(name: str) -> ModuleType:
    """The module implementing algorithm `name` (e.g. "dql")."""
    if name not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name])
