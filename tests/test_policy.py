"""Trained policies outside the loop (policy.py): `load_policy` from a finished run, its action
choice overrides, and `evaluate_run`, which never writes over an earlier evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runhelpers import tiny_bandit_run

from diffrl import launch
from diffrl.policy import checkpoint_step, evaluate_run, load_policy
from diffrl.run import RunError, execute
from diffrl.settings import SettingsError

pytestmark = pytest.mark.usefixtures("fast_compiles")  # tiny programs (tests/conftest.py)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 20-step IQL run on the corners bandit (IQL: it has a critic to rank with)."""
    out = tmp_path_factory.mktemp("policy") / "run"
    execute(launch.start(tiny_bandit_run("iql", {"hidden": 8}, steps=20), out), progress=False)
    return out


def test_load_policy_acts_on_one_or_many_observations(finished):
    policy = load_policy(finished)
    assert policy.step == 20 and policy.choice == policy.run.choice
    one = policy(np.zeros(2, np.float32))
    many = policy(np.zeros((5, 2), np.float32))
    assert one.shape == (2,) and many.shape == (5, 2)
    assert np.all(np.abs(many) <= policy.run.spec.max_action)


def test_the_action_choice_can_be_overridden_and_is_checked(finished):
    ranked = load_policy(finished, selection="argmax", candidates=4)
    assert (ranked.choice.selection, ranked.choice.candidates) == ("argmax", 4)
    assert ranked(np.zeros((3, 2), np.float32)).shape == (3, 2)
    with pytest.raises(SettingsError, match="action choice: setting 'candidates'.*greater than 0"):
        load_policy(finished, selection="argmax", candidates=0)


def test_which_checkpoint_comes_from_the_summary(finished, tmp_path):
    summary = json.loads((finished / "summary.json").read_text())
    assert checkpoint_step(finished, "final") == 20
    assert checkpoint_step(finished, "best") == summary["best"]["step"]
    with pytest.raises(RunError, match="which must be one of"):
        checkpoint_step(finished, "latest")
    with pytest.raises(RunError, match="no summary.json; the run has not finished"):
        checkpoint_step(tmp_path, "final")


def test_each_evaluation_goes_to_a_new_file(finished):
    first = evaluate_run(finished)
    second = evaluate_run(finished)
    assert first["written"] != second["written"]
    for result in (first, second):
        written = json.loads(open(result["written"]).read())
        assert written["which"] == "final" and written["step"] == 20 and "score" in written
    assert first["score"] == second["score"]  # the same policy, keys and evaluation


def test_a_bandit_run_refuses_another_env(finished):
    with pytest.raises(RunError, match="a bandit run is scored on its task; --env does not apply"):
        evaluate_run(finished, env="Hopper-v5")
