"""The papers' bandit claims (BANDITS.md), asserted at a reduced budget through the bandit suite.

Each run is the suite's setting for the algorithm with fewer steps (and, for diffusion BC, the
paper's N = 50); Diffusion-QL on corners is `diffrl demo` (the same setting) at 3 000 steps.
docs/bandits.md has the full-budget numbers, including the claim that does not reproduce
(Diffusion-QL on `cross`).
"""

from __future__ import annotations

import json

import pytest
from runhelpers import assert_png_has_content

from diffrl.bandits import suite
from diffrl.demo import run_demo


def run(tmp_path_factory, task: str, algo: str, steps: int, **overrides) -> dict:
    out = tmp_path_factory.mktemp(f"{task}-{algo}")
    variant = suite.Variant(algo, tuple(overrides.items()))
    return suite.train_variant(task, variant, out, steps, seed=0, progress=False)


@pytest.fixture(scope="module")
def dql_corners(tmp_path_factory):
    """`diffrl demo` at 3 000 steps: Diffusion-QL with the suite's dql setting on corners."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, run_demo(out, steps=3000, progress=False)


def test_diffusion_bc_recovers_all_four_modes_of_corners(tmp_path_factory):
    record = run(tmp_path_factory, "corners", "diffbc", 4000, n_steps=50)
    assert record["support_rate"] >= 0.95
    for share in record["mode_shares"]:
        assert abs(share - 0.25) <= 0.07


def test_gaussian_bc_covers_the_modes_with_mass_between_them(tmp_path_factory):
    record = run(tmp_path_factory, "corners", "bc", 1000)
    assert record["support_rate"] < 0.5


def test_diffusion_ql_puts_its_mass_on_the_best_mode_of_corners(dql_corners):
    out, summary = dql_corners
    # the deployed policy: 50 candidates, one drawn from softmax(min-Q of the target critic)
    assert summary["best_mode_share"] >= 0.9
    assert summary["support_rate"] >= 0.95
    # the reverse chain alone has already moved mass towards the best mode: the data hold 25 %
    plain = summary["plain_samples"]
    assert plain["mode_shares"][3] == max(plain["mode_shares"])
    assert plain["best_mode_share"] >= 0.33
    written = json.loads((out / "summary.json").read_text())
    assert written["passed"] is True
    assert_png_has_content(out / "actions.png", 600, 250)


# Diffusion-QL's claim on `cross` (best-mode share ≥ 0.9) does not reproduce at budgets a test
# can afford (0.152 at 3 000 steps, 0.831 at 6 000, 0.858 at 12 000): it is not a test; the
# measured numbers are in docs/bandits.md.


def test_td3bc_concentrates_less_on_the_best_mode_than_diffusion_ql(tmp_path_factory, dql_corners):
    record = run(tmp_path_factory, "corners", "td3bc", 1000)
    assert record["best_mode_share"] < dql_corners[1]["best_mode_share"]
