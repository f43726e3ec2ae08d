"""Dataset loaders on fixtures written at test time in the real formats (D4RL HDF5, Minari, npz)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from diffrl.data import (
    DatasetError,
    apply_reward_transform,
    list_known_d4rl_names,
    load_dataset,
)
from diffrl.data.arrays import load_npz, save_npz
from diffrl.data.d4rl import (
    d4rl_file_name,
    load_d4rl_hdf5,
    name_for_d4rl_file,
    qlearning_dataset,
)
from diffrl.data.minari import flatten_observation
from diffrl.data.scores import (
    eval_env_for,
    max_episode_steps,
    normalized_score,
    reference_returns,
)
from diffrl.data.transforms import REWARD_TRANSFORMS

KEYS = ("observations", "actions", "next_observations", "rewards", "terminals")


# -- fixtures ---------------------------------------------------------------------------------
def reference_qlearning(data, terminate_on_end=False, max_episode_steps=None):
    """D4RL's `qlearning_dataset` loop, written out plainly (the oracle for the vectorised one)."""
    n = len(data["rewards"])
    use_timeouts = "timeouts" in data
    out = {k: [] for k in KEYS}
    episode_step = 0
    for i in range(n - 1):
        done_bool = bool(data["terminals"][i])
        if use_timeouts:
            final_timestep = bool(data["timeouts"][i])
        else:
            final_timestep = episode_step == max_episode_steps - 1
        if (not terminate_on_end) and final_timestep:
            episode_step = 0
            continue
        if done_bool or final_timestep:
            episode_step = 0
        out["observations"].append(np.float32(data["observations"][i]))
        out["next_observations"].append(np.float32(data["observations"][i + 1]))
        out["actions"].append(np.float32(data["actions"][i]))
        out["rewards"].append(np.float32(data["rewards"][i]))
        out["terminals"].append(done_bool)
        episode_step += 1
    result = {k: np.array(v) for k, v in out.items()}
    for key in ("observations", "next_observations", "actions"):  # keep 2-D when empty
        width = np.shape(data[key.replace("next_", "")])[1]
        result[key] = result[key].reshape(len(result[key]), width).astype(np.float32)
    result["rewards"] = result["rewards"].astype(np.float32)
    result["terminals"] = result["terminals"].astype(bool)
    return result


def make_rows(n=60, obs_dim=3, act_dim=2, seed=0, terminals=(9, 30), timeouts=(19, 44)):
    rng = np.random.default_rng(seed)
    term = np.zeros(n, bool)
    term[list(terminals)] = True
    tout = np.zeros(n, bool)
    tout[list(timeouts)] = True
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": term,
        "timeouts": tout,
    }


def write_h5(path, rows, attrs=None):
    with h5py.File(path, "w") as f:
        for key, value in rows.items():
            if key == "rewards":
                value = value.reshape(-1, 1)  # some D4RL files store (N, 1)
            f.create_dataset(key, data=value, compression="gzip")
        f.create_dataset("infos/qpos", data=np.zeros((len(rows["rewards"]), 2)))
        f.create_dataset("metadata/algorithm", data="SAC")
        f.attrs.update(attrs or {})
    return path


def assert_matches(ds, ref):
    for key in KEYS:
        got = getattr(ds, key)
        assert got.dtype == ref[key].dtype, key
        np.testing.assert_array_equal(got, ref[key], err_msg=key)


@pytest.fixture
def no_home_data(tmp_path, monkeypatch):
    """No D4RL/Minari folder outside tmp_path can be seen."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("D4RL_DATASET_DIR", raising=False)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- D4RL HDF5 --------------------------------------------------------------------------------
@pytest.mark.parametrize("terminate_on_end", [False, True])
def test_hdf5_equals_reference_loop(tmp_path, terminate_on_end):
    rows = make_rows(terminals=(9, 30, 59), timeouts=(19, 44))  # last row is a terminal
    path = write_h5(tmp_path / "data.hdf5", rows)
    ds = load_d4rl_hdf5(path, terminate_on_end=terminate_on_end)
    ref = reference_qlearning(rows, terminate_on_end)
    assert_matches(ds, ref)
    assert len(ds.observations) == (59 if terminate_on_end else 57)
    assert ds.timeouts.sum() == (2 if terminate_on_end else 0)
    assert ds.source == str(path) and ds.name is None and ds.env_id is None
    # complete episodes of the raw rows, split on terminals | timeouts
    r = rows["rewards"].astype(np.float64)
    expected = [r[0:10].sum(), r[10:20].sum(), r[20:31].sum(), r[31:45].sum(), r[45:60].sum()]
    np.testing.assert_allclose(ds.episode_returns, expected, rtol=1e-12)


def test_hdf5_last_row_timeout_and_random_flags(tmp_path):
    rng = np.random.default_rng(3)
    rows = make_rows(n=400, terminals=(), timeouts=())
    rows["terminals"] = rng.random(400) < 0.03
    rows["timeouts"] = (rng.random(400) < 0.03) & ~rows["terminals"]
    rows["timeouts"][-1] = True
    ds = load_d4rl_hdf5(write_h5(tmp_path / "r.h5", rows))
    assert_matches(ds, reference_qlearning(rows))


def test_file_without_timeouts(tmp_path):
    rows = make_rows(n=700, terminals=(100, 500, 501), timeouts=())
    del rows["timeouts"]
    path = write_h5(tmp_path / "no_timeouts.hdf5", rows)
    # no name: no row is a timeout, only the last row goes
    plain = load_d4rl_hdf5(path)
    assert len(plain.observations) == 699
    assert_matches(plain, reference_qlearning(rows, max_episode_steps=10**9))
    # a known name supplies D4RL's step counter (kitchen: 280 steps)
    kitchen = load_d4rl_hdf5(path, name="kitchen-complete-v0")
    assert max_episode_steps("kitchen-complete-v0") == 280
    assert_matches(kitchen, reference_qlearning(rows, max_episode_steps=280))
    # after the terminal row 100 the counter restarts at 1 (D4RL's quirk): row 379 is final
    assert len(kitchen.observations) == 698
    assert not (kitchen.observations == rows["observations"][379]).all(axis=1).any()
    assert len(kitchen.episode_returns) == 4  # 0-100, 101-379, 380-500, 501
    for tef in (False, True):
        for steps in (1, 2, 7, 50):
            got = qlearning_dataset(rows, tef, steps)
            ref = reference_qlearning(rows, tef, steps)
            for key in KEYS:
                np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{key} {tef} {steps}")


def test_file_with_next_observations(tmp_path):
    rows = make_rows(n=30, terminals=(7,), timeouts=(15,))
    rows["next_observations"] = rows["observations"] + 100.0
    ds = load_d4rl_hdf5(write_h5(tmp_path / "next.hdf5", rows))
    keep = np.array([i for i in range(30) if i != 15])  # timeout dropped, last row kept
    np.testing.assert_array_equal(ds.observations, rows["observations"][keep])
    np.testing.assert_array_equal(ds.next_observations, rows["next_observations"][keep])
    np.testing.assert_array_equal(ds.terminals, rows["terminals"][keep])
    rows["timeouts"][-1] = True  # a final timeout row goes too
    ds = load_d4rl_hdf5(write_h5(tmp_path / "next2.hdf5", rows))
    assert len(ds.observations) == 28


def test_root_attrs_override_tables(tmp_path):
    attrs = {"env_id": "Hopper-v5", "ref_min_score": 1.5, "ref_max_score": 9.0}
    path = write_h5(tmp_path / "hopper_medium-v2.hdf5", make_rows(), attrs)
    ds = load_dataset(str(path))
    assert ds.name == "hopper-medium-v2"  # guessed from D4RL's file name
    assert (ds.env_id, ds.env_kwargs) == ("Hopper-v5", {})
    assert (ds.ref_min_score, ds.ref_max_score) == (1.5, 9.0)
    ds = load_dataset(str(write_h5(tmp_path / "x.hdf5", make_rows(), {"name": "mine"})))
    assert ds.name == "mine" and ds.ref_min_score is None


def test_d4rl_name_resolution(no_home_data, monkeypatch):
    folder = no_home_data / "d4rl"
    folder.mkdir()
    monkeypatch.setenv("D4RL_DATASET_DIR", str(folder))
    rows = make_rows()
    write_h5(folder / "hopper_medium_replay-v2.hdf5", rows)
    ds = load_dataset("d4rl:hopper-medium-replay-v2")
    assert ds.name == "hopper-medium-replay-v2"
    assert (ds.env_id, ds.env_kwargs) == ("Hopper-v4", {})
    assert (ds.ref_min_score, ds.ref_max_score) == (-20.272305, 3234.3)
    assert_matches(ds, reference_qlearning(rows))
    write_h5(folder / "ant-medium-v2.hdf5", rows)  # `<name>.hdf5` is accepted too
    ant = load_dataset("d4rl:ant-medium-v2")
    assert (ant.env_id, ant.env_kwargs) == ("Ant-v4", {"use_contact_forces": True})
    assert load_dataset(str(folder / "hopper_medium_replay-v2.hdf5")).name == ds.name


def test_d4rl_file_names():
    assert d4rl_file_name("hopper-medium-replay-v2") == "hopper_medium_replay-v2.hdf5"
    assert d4rl_file_name("walker2d-full-replay-v1") == "walker2d_full_replay-v1.hdf5"
    assert d4rl_file_name("walker2d-medium-replay-v0") == "walker_mixed.hdf5"
    assert d4rl_file_name("pen-human-v1") == "pen-human-v1.hdf5"
    assert d4rl_file_name("pen-cloned-v0") == "pen-demos-v0-bc-combined.hdf5"
    assert (
        d4rl_file_name("antmaze-umaze-v2")
        == "Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse_fixed.hdf5"
    )
    assert (
        d4rl_file_name("antmaze-large-play-v0")
        == "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_False_sparse.hdf5"
    )
    assert (
        d4rl_file_name("antmaze-medium-diverse-v1")
        == "Ant_maze_medium_noisy_multistart_True_multigoal_True_sparse.hdf5"
    )
    assert (
        d4rl_file_name("kitchen-mixed-v0") == "kitchen_microwave_kettle_bottomburner_light-v0.hdf5"
    )
    assert d4rl_file_name("maze2d-umaze-v1") == "maze2d-umaze-sparse-v1.hdf5"
    assert d4rl_file_name("maze2d-large-dense-v1") == "maze2d-large-dense-v1.hdf5"
    assert name_for_d4rl_file("some/dir/walker_mixed.hdf5") == "walker2d-medium-replay-v0"
    assert name_for_d4rl_file("my_data.hdf5") is None
    files = [d4rl_file_name(n) for n in list_known_d4rl_names()]
    files = [f for f in files if f is not None]
    assert len(files) == len(set(files))  # one file per name


# -- Minari -------------------------------------------------------------------------------------
def _minari_buffers(rng):
    from minari.data_collector import EpisodeBuffer

    buffers, flat = [], {k: [] for k in ("obs", "next", "act", "rew", "term", "tout")}
    episodes = [(5, False, True), (4, True, False), (3, False, False)]  # the last one is open
    for i, (steps, term, trunc) in enumerate(episodes):
        obs = rng.normal(size=(steps + 1, 3)).astype(np.float32).astype(np.float64)
        act = rng.uniform(-2, 2, size=(steps, 1)).astype(np.float32)
        rew = rng.normal(size=steps).astype(np.float32).astype(np.float64)
        te, tr = np.zeros(steps, bool), np.zeros(steps, bool)
        te[-1], tr[-1] = term, trunc
        buffers.append(
            EpisodeBuffer(
                id=i,
                seed=i,
                observations=obs,
                actions=act,
                rewards=rew,
                terminations=te,
                truncations=tr,
                infos={},
            )
        )
        for key, value in zip(flat, (obs[:-1], obs[1:], act, rew, te, tr & ~te), strict=True):
            flat[key].append(value)
    return buffers, {k: np.concatenate(v) for k, v in flat.items()}


def test_minari_round_trip(no_home_data):
    import minari

    buffers, flat = _minari_buffers(np.random.default_rng(0))
    with warnings.catch_warnings():  # minari warns that no eval env is given
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(
            "test/pendulum/tiny-v0",
            buffers,
            env="Pendulum-v1",
            ref_min_score=-1000.0,
            ref_max_score=0.0,
            algorithm_name="random",
            author="diffrl",
            author_email="none@example.org",
            code_permalink="none",
            description="fixture",
        )
    ds = load_dataset("minari:test/pendulum/tiny-v0")
    np.testing.assert_array_equal(ds.observations, flat["obs"].astype(np.float32))
    np.testing.assert_array_equal(ds.next_observations, flat["next"].astype(np.float32))
    np.testing.assert_array_equal(ds.actions, flat["act"])
    np.testing.assert_array_equal(ds.rewards, flat["rew"].astype(np.float32))
    np.testing.assert_array_equal(ds.terminals, flat["term"])
    np.testing.assert_array_equal(ds.timeouts, flat["tout"])  # timeouts kept: next obs exact
    assert ds.size == 12 and ds.timeouts.sum() == 1 and ds.terminals.sum() == 1
    assert (ds.name, ds.env_id, ds.source) == (
        "test/pendulum/tiny-v0",
        "Pendulum-v1",
        "minari:test/pendulum/tiny-v0",
    )
    assert (ds.action_low, ds.action_high) == (-2.0, 2.0)
    assert (ds.ref_min_score, ds.ref_max_score) == (-1000.0, 0.0)
    expected = [flat["rew"][:5].sum(), flat["rew"][5:9].sum()]  # third episode incomplete
    np.testing.assert_allclose(ds.episode_returns, expected, rtol=1e-6)


def test_minari_missing_dataset(no_home_data):
    with pytest.raises(DatasetError, match="MINARI_DATASETS_PATH") as err:
        load_dataset("minari:test/none/absent-v0")
    assert "test/none/absent-v0" in str(err.value)


def test_flatten_dict_observation_sorted_keys():
    obs = {"b": np.ones((4, 2)), "a": {"y": np.zeros((4, 1)), "x": np.full((4, 3, 1), 2.0)}}
    flat = flatten_observation(obs)
    assert flat.dtype == np.float32 and flat.shape == (4, 6)
    np.testing.assert_array_equal(flat[0], [2, 2, 2, 0, 1, 1])


# -- npz ----------------------------------------------------------------------------------------
def test_npz_round_trip(tmp_path):
    rows = make_rows()
    ds = load_d4rl_hdf5(write_h5(tmp_path / "hopper_medium-v2.hdf5", rows), "hopper-medium-v2")
    ds = apply_reward_transform(ds.replace(timeouts=ds.terminals.copy()), "normalize")
    out = save_npz(ds, tmp_path / "saved.npz")
    back = load_dataset(str(out))
    for field in KEYS + ("timeouts", "episode_returns"):
        got, want = getattr(back, field), getattr(ds, field)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=field)
    for field in ("name", "env_id", "env_kwargs", "ref_min_score", "ref_max_score"):
        assert getattr(back, field) == getattr(ds, field), field
    assert (back.action_low, back.action_high, back.reward_transform) == (-1.0, 1.0, "normalize")
    assert back.fingerprint() == ds.fingerprint()
    with pytest.raises(DatasetError, match="overwrite"):
        save_npz(ds, out)
    save_npz(ds, out, overwrite=True)


def test_npz_raw_rows_follow_d4rl(tmp_path):
    rows = make_rows()
    path = tmp_path / "raw.npz"
    np.savez(path, **rows, action_low=-2.0, action_high=2.0, name="hopper-medium-v2")
    ds = load_npz(path)
    assert_matches(ds, reference_qlearning(rows))
    assert (ds.action_low, ds.action_high, ds.name) == (-2.0, 2.0, "hopper-medium-v2")
    assert ds.ref_max_score == 3234.3 and ds.env_id == "Hopper-v4"


# -- broken inputs --------------------------------------------------------------------------------
def _broken(kind, tmp_path):
    rows = make_rows()
    if kind == "missing key":
        del rows["actions"]
    elif kind == "length mismatch":
        rows["rewards"] = rows["rewards"][:-1]
    elif kind == "nan":
        rows["observations"][4, 1] = np.nan
    elif kind == "wrong shape":
        rows["observations"] = rows["observations"][:, 0]
    elif kind == "actions out of bounds":
        rows["actions"][7, 0] = 1.5
    return write_h5(tmp_path / f"{kind.replace(' ', '_')}.hdf5", rows)


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing key", ["'actions'", "no such key"]),
        ("length mismatch", ["'rewards'", "59 rows"]),
        ("nan", ["'observations'", "row 4"]),
        ("wrong shape", ["'observations'", "(N, dim)"]),
        ("actions out of bounds", ["'actions'", "action bounds"]),
    ],
)
def test_broken_hdf5_names_file_and_field(tmp_path, kind, words):
    path = _broken(kind, tmp_path)
    with pytest.raises(DatasetError) as err:
        load_dataset(str(path))
    for word in [str(path), *words]:
        assert word in str(err.value)


def test_corrupt_and_missing_files(no_home_data):
    bad = no_home_data / "corrupt.hdf5"
    bad.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(DatasetError, match="not a readable HDF5 file") as err:
        load_dataset(str(bad))
    assert str(bad) in str(err.value)
    cut = write_h5(no_home_data / "cut.hdf5", make_rows())
    cut.write_bytes(cut.read_bytes()[:2000])  # a copy that stopped half-way
    with pytest.raises(DatasetError, match="cut.hdf5: not a readable HDF5 file.*truncated"):
        load_dataset(str(cut))
    bad_npz = no_home_data / "corrupt.npz"
    bad_npz.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="corrupt.npz"):
        load_dataset(str(bad_npz))
    with pytest.raises(DatasetError, match="file not found"):
        load_dataset(str(no_home_data / "absent.hdf5"))
    with pytest.raises(DatasetError) as err:
        load_dataset("d4rl:hopper-medium-v2")
    message = str(err.value)
    assert "hopper_medium-v2.hdf5" in message and "D4RL_DATASET_DIR" in message
    assert str(no_home_data / "home" / ".d4rl" / "datasets") in message


def test_unknown_names_and_specs():
    with pytest.raises(DatasetError, match="hopper-medium-v2") as err:
        load_dataset("d4rl:hopper-medum-v2")
    assert "'name'" in str(err.value) and "d4rl:hopper-medum-v2" in str(err.value)
    with pytest.raises(DatasetError, match="d4rl:NAME"):
        load_dataset("data.csv")
    with pytest.raises(DatasetError, match="cql_antmaze"):
        load_dataset("data.csv", reward_transform="cql")


# -- reward transforms ----------------------------------------------------------------------------
def _toy_dataset(rewards, terminals):
    n = len(rewards)
    rows = {
        "observations": np.zeros((n + 1, 2), np.float32),
        "actions": np.zeros((n + 1, 1), np.float32),
        "rewards": np.append(np.asarray(rewards, np.float32), 0),
        "terminals": np.append(np.asarray(terminals, bool), False),
    }
    from diffrl.data.d4rl import dataset_from_d4rl_arrays

    return dataset_from_d4rl_arrays(rows, "<toy>")


def test_reward_transform_values():
    ds = _toy_dataset([0.0, 1.0, 0.0, 1.0, 3.0], [False, True, False, True, False])
    r = np.array([0.0, 1.0, 0.0, 1.0, 3.0])
    expected = {
        "no": r,
        "cql_antmaze": 4 * (r - 0.5),
        "iql_antmaze": r - 1,
        "antmaze": 2 * (r - 0.25),
        "normalize": (r - 1.0) / np.sqrt(6.0 / 4.0),  # unbiased std: sum sq dev 6 over n-1 = 4
    }
    for name, want in expected.items():
        got = apply_reward_transform(ds, name)
        assert got.reward_transform == name
        np.testing.assert_allclose(got.rewards, want, rtol=1e-6, err_msg=name)
    # iql_locomotion: episodes split on terminals only ([1, 2] and [0.5]; the tail is open)
    ds2 = _toy_dataset([1.0, 2.0, 0.5, 0.0, 7.0], [False, True, True, False, False])
    got = apply_reward_transform(ds2, "iql_locomotion").rewards  # returns 3.0, 0.5 -> range 2.5
    np.testing.assert_allclose(got, np.array([1.0, 2.0, 0.5, 0.0, 7.0]) * 400.0, rtol=1e-6)
    assert set(REWARD_TRANSFORMS) == set(expected) | {"iql_locomotion"}


def test_reward_transform_errors():
    ds = _toy_dataset([0.0, 1.0, 0.0], [False, True, False])
    with pytest.raises(DatasetError, match="valid names: no, cql_antmaze"):
        apply_reward_transform(ds, "clip")
    once = apply_reward_transform(ds, "iql_antmaze")
    with pytest.raises(DatasetError, match="already transformed by 'iql_antmaze'"):
        apply_reward_transform(once, "cql_antmaze")
    assert apply_reward_transform(once, "no") is once
    with pytest.raises(DatasetError, match="return range"):  # one terminal-split episode
        apply_reward_transform(ds, "iql_locomotion")


# -- scores and envs ------------------------------------------------------------------------------
def test_reference_returns_and_scores():
    assert reference_returns("hopper-medium-v2") == (-20.272305, 3234.3)
    assert reference_returns("halfcheetah-full-replay-v2") == (-280.178953, 12135.0)
    assert reference_returns("antmaze-large-diverse-v0") == (0.0, 1.0)
    assert reference_returns("pen-cloned-v1") == (96.262799, 3076.8331017826877)
    assert reference_returns("maze2d-medium-dense-v1") == (44.264742, 297.4552547777125)
    assert reference_returns("hopper-medium-v3") is None
    assert normalized_score("hopper-medium-v2", 3234.3) == pytest.approx(100.0)
    assert normalized_score("hopper-medium-v2", -20.272305) == pytest.approx(0.0)
    assert normalized_score("hopper-medium-v2", 1607.0138475) == pytest.approx(50.0)
    assert normalized_score("walker2d-expert-v2", 4592.3) == pytest.approx(100.0)
    with pytest.raises(DatasetError):
        normalized_score("nope-v0", 1.0)
    names = list_known_d4rl_names()
    assert len(names) == 4 * 6 * 3 + 6 * 3 + 4 * 3 * 2 + 3 + 6
    assert max_episode_steps("antmaze-umaze-diverse-v2") == 700
    assert max_episode_steps("antmaze-medium-play-v2") == 1000
    assert max_episode_steps("pen-human-v1") == 100
    assert max_episode_steps("door-cloned-v1") == 200
    assert max_episode_steps("hopper-medium-v2") == 1000
    assert max_episode_steps("unknown-v0") is None


def test_eval_env_for():
    assert eval_env_for("hopper-medium-v2") == ("Hopper-v4", {})
    assert eval_env_for("halfcheetah-medium-expert-v2") == ("HalfCheetah-v4", {})
    assert eval_env_for("walker2d-medium-replay-v2") == ("Walker2d-v4", {})
    assert eval_env_for("ant-expert-v2") == ("Ant-v4", {"use_contact_forces": True})
    assert eval_env_for("pen-human-v1") == ("AdroitHandPen-v1", {})
    for name in ("antmaze-umaze-v2", "kitchen-partial-v0", "maze2d-umaze-v1", "door-human-v1"):
        assert eval_env_for(name) is None
    assert eval_env_for("not-a-dataset") is None


def _rows_npz(path, **over):
    rng, n, f32 = np.random.default_rng(0), 20, np.float32
    arrays = {"observations": rng.normal(size=(n, 3)).astype(f32),
              "actions": rng.uniform(-1, 1, (n, 2)).astype(f32),
              "rewards": rng.normal(size=n).astype(f32),
              "terminals": np.zeros(n, bool)}  # fmt: skip
    np.savez(path, **{**arrays, **over})
    return str(path)


EMPTY = {"observations": np.zeros((0, 3), np.float32), "actions": np.zeros((0, 2), np.float32),
         "rewards": np.zeros(0, np.float32), "terminals": np.zeros(0, bool)}  # fmt: skip


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (EMPTY, "field 'observations' is not usable: expected at least one row, found 0 rows"),
        ({"rewards": np.array([object()] * 20)}, "field 'rewards' holds Python objects"),
        ({"rewards": np.full(20, 1e300)}, "expected values that fit in float32, found 1e\\+300"),
        ({"terminals": np.full(20, 2.0)}, "expected flags of 0 or 1 .or booleans., found"),
        ({"rewards": np.ones(20, np.complex64)}, "expected a real numeric array.*complex64"),
    ],
)
def test_bad_arrays_are_refused_in_one_line_not_rounded_or_dropped(tmp_path, over, message):
    path = _rows_npz(tmp_path / "bad.npz", **over)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path)
    assert str(info.value).startswith(path) and "\n" not in str(info.value)


def test_a_directory_is_said_to_be_one(tmp_path):
    for name in ("plain", "looks-like.hdf5", "looks-like.npz"):
        (tmp_path / name).mkdir()
        with pytest.raises(DatasetError, match="is a directory; expected a .hdf5/.h5/.npz file"):
            load_dataset(str(tmp_path / name))


def test_a_truncated_minari_file_is_one_line(no_home_data, tmp_path):
    import minari

    buffers, _ = _minari_buffers(np.random.default_rng(0))
    with warnings.catch_warnings():  # minari warns that no eval env is given
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers("test/pendulum/cut-v0", buffers, env="Pendulum-v1",
                                           algorithm_name="random", author="diffrl",
                                           author_email="none@example.org", code_permalink="none",
                                           description="fixture")  # fmt: skip
    (data,) = (tmp_path / "minari").rglob("main_data.hdf5")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cannot be read; the file is damaged or truncated"):
        load_dataset("minari:test/pendulum/cut-v0")
