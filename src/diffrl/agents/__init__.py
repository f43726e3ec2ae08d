"""The registry of algorithms: name -> the module whose `AGENT` implements `agents.api.Agent`.

Modules are imported when an algorithm is first asked for, so listing the names costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffrl.agents.api import Agent

ALGORITHMS = {
    "dql": "diffrl.agents.dql",
    "diffcps": "diffrl.agents.diffcps",
    "dtql": "diffrl.agents.dtql",
    "bc": "diffrl.agents.bc",
    "diffbc": "diffrl.agents.diffbc",
    "cvaebc": "diffrl.agents.cvaebc",
    "td3bc": "diffrl.agents.td3bc",
    "iql": "diffrl.agents.iql",
    "fql": "diffrl.agents.fql",
}


def get_agent(name: str) -> Agent:
    """The agent implementing algorithm `name` (e.g. "dql")."""
    if name not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; available: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name]).AGENT
