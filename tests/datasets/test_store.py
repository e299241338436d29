"""EpisodeStore: create/open, append/read, filters, drop, merge, stats, the streaming writer, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema, validate
from tests.datasets.helpers import assert_episode_equal, make_episode, make_store, small_schema


def test_create_open_keeps_schema_fps_robot_and_layout(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=2, attrs={"env_args": {"env_name": "Lift"}})
    store = EpisodeStore.open(path)
    assert store.schema == small_schema()
    assert store.fps == 20.0 and store.robot == {"name": "panda", "dof": 7}
    assert store.attrs == {"env_args": {"env_name": "Lift"}}
    # The documented layout, readable with plain zarr: cumulative int64 ends, time-first data.
    root = zarr.open_group(str(path), mode="r")
    assert root.attrs["format_version"] == 1
    ends = root["meta/episode_ends"][:]
    assert ends.dtype == np.int64
    # seeds 0 and 1 have 4 + seed % 9 steps: 4 and 5 -> ends 4, 9
    np.testing.assert_array_equal(ends, [4, 9])
    assert root["data/action"].shape == (9, 3)
    assert root["data/obs.cam"].chunks == (1, 8, 8, 3)  # one frame per chunk


def test_append_and_read_episodes_and_slices(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=3)
    for seed in range(3):
        assert_episode_equal(store.episode(seed), make_episode(seed))
    assert_episode_equal(store.episode(-1), make_episode(2))
    # global rows 3..6 span the end of episode 0 (rows 0-3) and the start of episode 1 (rows 4-8)
    rows = store.read_steps(3, 6, ["action"])["action"]
    want = np.concatenate([make_episode(0)["action"][3:], make_episode(1)["action"][:2]])
    np.testing.assert_array_equal(rows, want)
    got = store.read_rows(np.array([5, 0, 5]), ["obs.cam"])["obs.cam"]
    np.testing.assert_array_equal(got[0], make_episode(1)["obs.cam"][1])
    np.testing.assert_array_equal(got[1], make_episode(0)["obs.cam"][0])
    np.testing.assert_array_equal(got[2], got[0])
    assert store.episode_bounds(1) == (4, 9)
    with pytest.raises(DatasetError, match="episode 3"):
        store.episode(3)


def test_episode_metadata_and_filters(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=5)
    meta = store.episode_meta(3)
    assert (meta.source, meta.success, meta.task, meta.length) == ("rollout", True, "lift", 7)
    assert meta.start_time == 1003.0 and meta.policy_version == 0
    np.testing.assert_array_equal(store.episodes(source="demo"), [0, 2, 4])
    np.testing.assert_array_equal(store.episodes(success=True), [1, 3])
    np.testing.assert_array_equal(store.episodes(source=("demo", "rollout"), success=False), [0, 2, 4])
    assert store.episodes(task="other").size == 0
    with pytest.raises(DatasetError, match="unknown source"):
        store.episodes(source="simulation")


def test_drop_episode_shifts_later_episodes(tmp_path):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=4)
    store.drop_episode(1)
    assert store.n_episodes == 3
    for i, seed in enumerate([0, 2, 3]):
        assert_episode_equal(store.episode(i), make_episode(seed))
        assert store.episode_meta(i).start_time == 1000.0 + seed
    reopened = validate(path)
    # lengths 4, 6, 7 -> ends 4, 10, 17
    np.testing.assert_array_equal(reopened.episode_ends, [4, 10, 17])
    assert not (tmp_path / "s.zarr.rewrite").exists() and not (tmp_path / "s.zarr.replaced").exists()


def test_interrupted_drop_swap_is_finished_on_open(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=3)
    new = make_store(tmp_path / "s.zarr.rewrite", n=2)
    del new
    path.rename(tmp_path / "s.zarr.replaced")  # killed between the two renames
    with pytest.raises(DatasetError, match="rewrite was interrupted"):
        EpisodeStore.open(path, "r")
    store = EpisodeStore.open(path, "a")
    assert store.n_episodes == 2 and not (tmp_path / "s.zarr.replaced").exists()


def test_merge_appends_other_store_and_rejects_other_schema(tmp_path):
    a = make_store(tmp_path / "a.zarr", n=2)
    b = make_store(tmp_path / "b.zarr", n=3)
    assert a.merge(b) == [2, 3, 4]
    for i, seed in enumerate([0, 1, 0, 1, 2]):
        assert_episode_equal(a.episode(i), make_episode(seed))
    assert a.episode_meta(4).source == "demo"
    other = EpisodeStore.create(tmp_path / "c.zarr", Schema((Feature("action", "float64", (3,)),)), fps=10)
    with pytest.raises(DatasetError, match="feature 'action'"):
        a.merge(other)
    assert a.n_episodes == 5


def test_stats_are_right_cached_and_invalidated(tmp_path):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=2)
    actions = np.concatenate([make_episode(0)["action"], make_episode(1)["action"]]).astype(np.float64)
    stats = store.stats()
    assert "obs.cam" not in stats  # no statistics for images
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0))
    np.testing.assert_allclose(stats["action"]["std"], actions.std(0))
    np.testing.assert_allclose(stats["action"]["min"], actions.min(0))
    np.testing.assert_allclose(stats["action"]["q99"], np.quantile(actions, 0.99, axis=0))
    cached = zarr.open_group(str(path), mode="r").attrs["stats_cache"]
    assert cached["key"] == [0, 2, 9]
    # A reader uses the cache: overwrite it with a marker and read it back through a fresh handle.
    zarr.open_group(str(path), mode="r+").attrs["stats_cache"] = {"key": [0, 2, 9], "stats": {"reward": "x"}}
    assert EpisodeStore.open(path).stats(["reward"])["reward"] == "x"
    store = EpisodeStore.open(path, "a")
    store.append_episode(make_episode(7))
    assert store.stats(["reward"])["reward"] != "x"  # a new episode invalidates the cache
    store.drop_episode(2)  # back to the same episode/step counts, but a new generation
    assert store.stats(["action"])["action"]["mean"] == pytest.approx(actions.mean(0).tolist())


def test_writer_commit_discard_and_context_exit(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=1)
    episode = make_episode(10, length=11)
    with store.writer(source="teleop", task="stack", flush_steps=4) as w:
        for t in range(11):
            w.add({k: v[t] for k, v in episode.items()})
        assert w.n_steps == 11
        assert w.commit(success=True, extra={"operator": "ada"}) == 1
    assert_episode_equal(store.episode(1), episode)
    meta = store.episode_meta(1)
    assert (meta.source, meta.task, meta.success, meta.extra) == (
        "teleop",
        "stack",
        True,
        {"operator": "ada"},
    )
    # discard: flushed rows stay invisible and the next append overwrites them
    w = store.writer(flush_steps=2)
    for t in range(5):
        w.add({k: v[t] for k, v in make_episode(11).items()})
    w.discard()
    assert store.n_episodes == 2
    # leaving the block on an exception discards too
    with pytest.raises(RuntimeError), store.writer() as w:
        w.add({k: v[0] for k, v in make_episode(12).items()})
        raise RuntimeError("teleop crashed")
    store.append_episode(make_episode(13))
    assert_episode_equal(EpisodeStore.open(store.path).episode(2), make_episode(13))
    validate(store.path)
    with pytest.raises(DatasetError, match="already committed or discarded"):
        w.add({k: v[0] for k, v in make_episode(12).items()})


def test_writer_fills_optional_features(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", small_schema(), fps=10)
    ep = make_episode(3)
    with store.writer() as w:
        for t in range(len(ep["action"])):
            w.add({"obs.state": ep["obs.state"][t], "obs.cam": ep["obs.cam"][t], "action": ep["action"][t]})
        w.commit()
    got = store.episode(0)
    np.testing.assert_array_equal(got["policy_version"], -1)  # the schema's fill values
    np.testing.assert_array_equal(got["reward"], 0.0)


BAD_INPUTS = [
    ("nan action", lambda e: e["action"].__setitem__((2, 1), np.nan), "action", "non-finite.*step 2"),
    ("inf action", lambda e: e["action"].__setitem__((0, 0), np.inf), "action", "non-finite"),
    ("wrong shape", lambda e: e.__setitem__("action", e["action"][:, :2]), "action", r"shape \(\d+, 2\)"),
    ("wrong length", lambda e: e.__setitem__("reward", e["reward"][:-1]), "reward", "steps, other features"),
    ("float image", lambda e: e.__setitem__("obs.cam", e["obs.cam"] / 255.0), "obs.cam", "uint8"),
    (
        "float to int",
        lambda e: e.__setitem__("policy_version", e["logp"]),
        "policy_version",
        "cannot be stored",
    ),
    ("missing", lambda e: e.pop("action"), "action", "missing"),
    ("unknown", lambda e: e.__setitem__("obs.depth", e["reward"]), None, r"obs\.depth.*not in the schema"),
]


@pytest.mark.parametrize("name,corrupt,feature,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_feature_and_episode_and_changes_nothing(tmp_path, name, corrupt, feature, message):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=2)
    before = {i: store.episode(i) for i in range(2)}
    files_before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    episode = make_episode(5)
    corrupt(episode)
    with pytest.raises(DatasetError, match=message) as info:
        store.append_episode(episode)
    assert info.value.episode == 2 and "episode 2" in str(info.value)
    assert str(path) in str(info.value)
    if feature is not None:
        assert info.value.feature == feature and f"feature {feature!r}" in str(info.value)
    # nothing changed on disk, and the store still reads and validates
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == files_before
    reopened = validate(path)
    assert reopened.n_episodes == 2
    for i in range(2):
        assert_episode_equal(reopened.episode(i), before[i])


def test_writer_rejects_bad_step_and_keeps_going(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=1)
    ep = make_episode(4)
    with store.writer() as w:
        bad = {k: v[0] for k, v in ep.items()}
        bad["action"] = np.array([0.0, np.nan, 0.0])
        with pytest.raises(DatasetError, match=r"feature 'action', episode 1: non-finite value.*step 0"):
            w.add(bad)
        for t in range(len(ep["action"])):
            w.add({k: v[t] for k, v in ep.items()})
        with pytest.raises(DatasetError, match="source 'sim'"):
            w.commit(source="sim")
        w.commit()
    assert_episode_equal(store.episode(1), ep)


def test_bad_metadata_and_read_only(tmp_path):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=1)
    with pytest.raises(DatasetError, match="source 'sim' is not one of"):
        store.append_episode(make_episode(1), source="sim")
    with pytest.raises(DatasetError, match="not JSON-serialisable"):
        store.append_episode(make_episode(1), extra={"f": object()})
    reader = EpisodeStore.open(path, "r")
    with pytest.raises(DatasetError, match="read-only"):
        reader.append_episode(make_episode(1))
    with pytest.raises(DatasetError, match="already exists"):
        EpisodeStore.create(path, small_schema(), fps=20)


def test_open_missing_and_foreign_paths(tmp_path):
    with pytest.raises(DatasetError, match="no such store") as info:
        EpisodeStore.open(tmp_path / "missing.zarr")
    assert str(tmp_path / "missing.zarr") in str(info.value)
    zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w").create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(DatasetError, match="not a gipo-robot episode store"):
        EpisodeStore.open(tmp_path / "foreign.zarr")
    (tmp_path / "file.zarr").write_text("not a store")
    with pytest.raises(DatasetError, match=r"file\.zarr"):
        EpisodeStore.open(tmp_path / "file.zarr")


def test_torn_commit_is_invisible_and_overwritten(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=2)
    # Simulate a kill between growing episode_ends and writing the new end, with rows already written.
    ends = zarr.open_array(str(path / "meta" / "episode_ends"), mode="r+")
    ends.resize((3,))
    action = zarr.open_array(str(path / "data" / "action"), mode="r+")
    action.resize((20, 3))
    action[9:20] = 7.0
    store = EpisodeStore.open(path, "a")
    assert store.n_episodes == 2 and store.n_steps == 9
    validate(store)
    store.append_episode(make_episode(8))
    assert_episode_equal(EpisodeStore.open(path).episode(2), make_episode(8))
    assert json.loads((path / "meta" / "episode_ends" / "zarr.json").read_text())["shape"] == [3]


@pytest.mark.parametrize(
    "codec,exact", [("qoi", True), ("png", True), ("webp", True), ("none", True), ("jpeg", False)]
)
def test_image_codecs(tmp_path, codec, exact):
    store = EpisodeStore.create(tmp_path / "s.zarr", small_schema(codec), fps=10)
    # a smooth image so JPEG's error is small
    yy, xx = np.mgrid[0:8, 0:8]
    frames = np.stack([np.stack([yy * 16 + t, xx * 16, (yy + xx) * 8], -1) for t in range(4)]).astype(
        np.uint8
    )
    ep = make_episode(0, length=4)
    ep["obs.cam"] = frames
    store.append_episode(ep)
    got = EpisodeStore.open(store.path).episode(0)["obs.cam"]
    if exact:
        np.testing.assert_array_equal(got, frames)
    else:
        assert np.abs(got.astype(int) - frames).mean() < 8


def test_info_summary(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=4)
    info = store.info()
    assert (info["episodes"], info["steps"], info["success_rate"]) == (4, 4 + 5 + 6 + 7, 0.5)
    assert info["sources"] == {"demo": 2, "rollout": 2}
    assert info["features"]["obs.cam"] == {"dtype": "uint8", "shape": [8, 8, 3], "kind": "image"}
    assert info["size_bytes"] > 0
