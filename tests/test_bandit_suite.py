"""`diffrl bandit`: runs per algorithm, the figure grid, the metrics table, reuse of runs."""

from __future__ import annotations

import dataclasses
import json

import pytest
from runhelpers import assert_png_has_content

from diffrl.bandits import suite
from diffrl.cli import main
from diffrl.run import RunError

TINY_DQL = ["--steps", "200", "--quiet"]


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("bandit")
    code = main(
        ["bandit", "--task", "corners", "--algos", "dql,dtql", "--out", str(out), *TINY_DQL]
    )
    assert code == 0
    return out


def test_suite_writes_runs_figure_and_table(tiny_suite):
    task_dir = tiny_suite / "corners"
    records = json.loads((task_dir / "metrics.json").read_text())
    assert [r["algo"] for r in records] == ["dql", "dtql"]
    for r in records:
        assert {
            "algo",
            "support_rate",
            "mode_shares",
            "best_mode_share",
            "mean_true_reward",
        } <= set(r)
        assert len(r["mode_shares"]) == 4
        assert 0.0 <= r["support_rate"] <= 1.0
        assert r["steps"] == 200
        assert (task_dir / r["run_dir"] / "summary.json").exists()  # an ordinary run directory
    assert records[0]["action_choice"].startswith("softmax over 50")
    assert records[1]["action_choice"].startswith("policy samples")
    table = (task_dir / "metrics.md").read_text()
    assert "| dql |" in table and "| dtql |" in table
    assert_png_has_content(task_dir / "figure.png", 600, 250)


def test_finished_runs_are_reused_and_tables_merge(tiny_suite):
    task_dir = tiny_suite / "corners"
    stamp = (task_dir / "dql" / "bandit.json").stat().st_mtime_ns
    before = json.loads((task_dir / "dql" / "bandit.json").read_text())
    records = suite.run_task(
        "corners",
        suite.variants(["dql"]),
        tiny_suite,
        steps=200,
        progress=False,
        log=lambda _: None,
    )
    assert records == [before]  # not retrained
    assert (task_dir / "dql" / "bandit.json").stat().st_mtime_ns == stamp
    merged = json.loads((task_dir / "metrics.json").read_text())
    assert [r["label"] for r in merged] == ["dql", "dtql"]  # the dtql record is kept


def test_reusing_a_run_with_other_settings_is_refused(tiny_suite, monkeypatch):
    changed = dataclasses.replace(
        suite.BANDIT_SETTINGS["dql"], agent={**suite.BANDIT_SETTINGS["dql"].agent, "eta": 0.5}
    )
    monkeypatch.setitem(suite.BANDIT_SETTINGS, "dql", changed)
    with pytest.raises(RunError, match="agent=.*'eta': 0.1"):
        suite.run_task("corners", suite.variants(["dql"]), tiny_suite, steps=200,
                       progress=False, log=lambda _: None)  # fmt: skip
    monkeypatch.undo()
    with pytest.raises(RunError, match="steps=200"):
        suite.run_task(
            "corners",
            suite.variants(["dql"]),
            tiny_suite,
            steps=300,
            progress=False,
            log=lambda _: None,
        )


def test_n_variants_have_their_own_labels_and_settings():
    chosen = suite.variants(["diffbc", "dql"], [2, 50])
    assert [v.label for v in chosen] == ["diffbc-N2", "diffbc-N50", "dql-N2", "dql-N50"]
    cfg = suite.bandit_run_config("corners", chosen[2], None, 0)
    assert (
        cfg.agent["n_steps"] == 2 and cfg.agent["eta"] == suite.BANDIT_SETTINGS["dql"].agent["eta"]
    )
    dtql = suite.bandit_run_config("grid25", suite.Variant("dtql"), None, 0)
    assert dtql.dataset == "bandit:grid25"
    # the bandit's action choice goes to the run, the rest to the agent, all typed
    assert (dtql.selection, dtql.policy_output) == ("none", "sample")
    assert "selection" not in dtql.agent and dtql.agent["pretrain_steps"] == 2000


def test_every_experiment_names_known_tasks_and_algorithms():
    for _, task, algos, _, _ in suite.EXPERIMENTS:
        assert suite.canonical_task(task) == task
        assert set(algos) <= set(suite.BANDIT_SETTINGS)


def test_unknown_task_and_algorithm_give_one_line_errors(tmp_path, capsys):
    assert main(["bandit", "--task", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown bandit task 'nope'" in capsys.readouterr().err
    assert main(["bandit", "--task", "corners", "--algos", "xyz", "--out", str(tmp_path)]) == 2
    assert "no bandit settings for algorithm 'xyz'" in capsys.readouterr().err
