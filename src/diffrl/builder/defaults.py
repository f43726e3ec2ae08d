"""The builder's levels and default sizes, without the heavy imports of recipe.py.

`diffrl data --help` shows these; keeping them here lets the CLI build its parser without
importing JAX (recipe.py trains SAC and imports it at module level).
"""

from __future__ import annotations

LEVELS = ("random", "medium", "medium-replay", "expert", "medium-expert")
DEFAULT_SAC_STEPS = 300_000
DEFAULT_TRANSITIONS = 1_000_000
