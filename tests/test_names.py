"""Directory names of dataset specs (names.py)."""

from __future__ import annotations

from diffrl.names import dataset_slug


def test_directory_names_of_dataset_specs(tmp_path):
    assert dataset_slug("d4rl:hopper-medium-v2") == "hopper-medium-v2"
    assert dataset_slug(str(tmp_path / "tiny-hopper.hdf5")) == "tiny-hopper"
    assert dataset_slug("minari:diffrl/hopper-v5/medium-v0") == "diffrl_hopper-v5_medium-v0"
    assert dataset_slug("data/walker.npz") == "walker"
    assert dataset_slug("bandit:corners") == "corners"
