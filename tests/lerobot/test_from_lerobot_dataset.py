"""Episode store <-> LeRobot v3.0 dataset, through the real ``LeRobotDataset`` of LeRobot 0.6: both round
trips keep every low-dim value bit for bit, PNG images exactly, episode boundaries, fps and tasks (video:
``test_from_lerobot_video.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", minversion="0.6", reason=SKIP_REASON)

import pyarrow.parquet as pq
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema, validate
from gipo_robot.datasets.from_lerobot import lerobot_to_store, store_to_lerobot
from tests.datasets.helpers import one_json_object, run

LENGTHS = (5, 8, 3)
IMAGE = (8, 10, 3)


def rich_schema() -> Schema:
    """Every kind of feature: two float32 obs (-> observation.state), a float64 object state (->
    observation.environment_state), a bool obs (-> its own column), a camera, the RL scalars and a
    per-episode array."""
    return Schema(
        (
            Feature("obs.eef", "float32", (3,)),
            Feature("obs.gripper", "float32", (2,)),
            Feature("obs.object", "float64", (4,)),
            Feature("obs.contact", "bool", ()),
            Feature("obs.cam", "uint8", IMAGE, "image"),
            Feature("action", "float32", (3,)),
            Feature("reward", "float32", (), "scalar", fill=0.0),
            Feature("terminated", "bool", (), "scalar", fill=False),
            Feature("truncated", "bool", (), "scalar", fill=False),
            Feature("success", "bool", (), "scalar", fill=False),
            Feature("timestamp", "float64", (), "scalar", fill=0.0),
            Feature("logp", "float32", (), "scalar", fill=0.0),
            Feature("policy_version", "int64", (), "scalar", fill=-1),
        ),
        episode_features=(Feature("next_obs.eef", "float32", (3,)),),
    )


def make_rich_store(path) -> EpisodeStore:
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path, rich_schema(), fps=20, robot={"name": "panda"}, attrs={"note": "x"})
    for e, t in enumerate(LENGTHS):
        store.append_episode(
            {
                "obs.eef": rng.normal(size=(t, 3)).astype(np.float32),
                "obs.gripper": rng.normal(size=(t, 2)).astype(np.float32),
                "obs.object": rng.normal(size=(t, 4)),  # float64: 53-bit mantissas must survive
                "obs.contact": rng.random(t) < 0.5,
                "obs.cam": rng.integers(0, 256, size=(t, *IMAGE), dtype=np.uint8),
                "action": rng.uniform(-1, 1, size=(t, 3)).astype(np.float32),
                "reward": rng.normal(size=t).astype(np.float32),
                "terminated": np.arange(t) == t - 1,
                "success": np.arange(t) == t - 1 if e == 1 else np.zeros(t, bool),
                "timestamp": 0.013 + np.arange(t) / 20.0,  # not LeRobot's own clock
                "logp": rng.normal(size=t).astype(np.float32),
                "policy_version": np.full(t, e),
            },
            source="rollout" if e else "demo",
            success=e == 1,
            task=f"task {e % 2}",
            start_time=1000.5 + e,
            policy_version=e if e else -1,
            extra={"seed": e},
            episode_data={"next_obs.eef": rng.normal(size=3).astype(np.float32)},
        )
    return store


def test_store_to_lerobot_to_store_keeps_every_value(tmp_path):
    store = make_rich_store(tmp_path / "a.zarr")
    store_to_lerobot(store, tmp_path / "lerobot")

    # What LeRobot itself reads: features, fps, episode boundaries, tasks, values.
    ds = LeRobotDataset("local/lerobot", root=tmp_path / "lerobot")
    assert (ds.fps, ds.num_episodes, ds.num_frames) == (20, 3, sum(LENGTHS))
    assert [ds.meta.episodes[i]["length"] for i in range(3)] == list(LENGTHS)
    assert ds.meta.features["observation.state"]["names"] == [
        "eef.0",
        "eef.1",
        "eef.2",
        "gripper.0",
        "gripper.1",
    ]
    assert ds.meta.features["observation.environment_state"]["dtype"] == "float64"
    assert ds.meta.features["observation.images.cam"]["dtype"] == "image"
    frame = ds[5 + 2]  # episode 1, step 2 (episode 0 has 5 frames)
    assert frame["episode_index"].item() == 1 and frame["frame_index"].item() == 2
    assert frame["task"] == "task 1"
    want = np.concatenate([store.episode(1)["obs.eef"][2], store.episode(1)["obs.gripper"][2]])
    np.testing.assert_array_equal(frame["observation.state"].numpy(), want)
    # LeRobot hands images as float CHW in [0, 1]; x255 gives back the stored bytes
    img = np.round(frame["observation.images.cam"].numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(img, store.episode(1)["obs.cam"][2])
    assert frame["timestamp"].item() == pytest.approx(2 / 20)  # LeRobot's clock: frame_index / fps
    stats = json.loads((tmp_path / "lerobot" / "meta" / "stats.json").read_text())
    all_actions = store.read_steps(0, store.n_steps, ["action"])["action"].astype(np.float64)
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(0), rtol=1e-5)

    back = lerobot_to_store(tmp_path / "lerobot", tmp_path / "b.zarr")
    validate(back.path)
    assert back.schema == store.schema and back.fps == 20.0
    assert (back.robot, back.attrs) == (store.robot, store.attrs)
    np.testing.assert_array_equal(back.episode_ends, store.episode_ends)
    for i in range(store.n_episodes):
        got, want = back.episode(i), store.episode(i)
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert back.episode_meta(i) == store.episode_meta(i)
        np.testing.assert_array_equal(
            back.episode_data(i)["next_obs.eef"], store.episode_data(i)["next_obs.eef"]
        )


def write_native_dataset(root) -> None:
    """A dataset recorded with LeRobot's own API: motor names, a camera, LeRobot's RL columns, a float64
    feature, and an episode whose frames carry two tasks."""
    features = {
        "observation.state": {
            "dtype": "float32",
            "shape": (3,),
            "names": ["shoulder.pos", "elbow.pos", "gripper.pos"],
        },
        "observation.images.front": {
            "dtype": "image",
            "shape": (6, 7, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.wrench": {"dtype": "float64", "shape": (2,), "names": ["fx", "fy"]},
        "action": {"dtype": "float32", "shape": (3,), "names": ["shoulder.pos", "elbow.pos", "gripper.pos"]},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        "next.success": {"dtype": "bool", "shape": (1,), "names": None},
    }
    ds = LeRobotDataset.create(
        "local/native", fps=30, features=features, root=root, robot_type="so101", use_videos=False
    )
    rng = np.random.default_rng(1)
    for e, t in enumerate((4, 6)):
        for i in range(t):
            ds.add_frame(
                {
                    "observation.state": rng.normal(size=3).astype(np.float32),
                    "observation.images.front": rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8),
                    "observation.wrench": rng.normal(size=2),
                    "action": rng.normal(size=3).astype(np.float32),
                    "next.reward": np.array([i / t], np.float32),
                    "next.done": np.array([i == t - 1]),
                    "next.success": np.array([e == 1 and i == t - 1]),
                    "task": "pick" if e == 0 or i < 3 else "place",
                }
            )
        ds.save_episode()
    ds.finalize()


def test_lerobot_to_store_to_lerobot_keeps_every_value(tmp_path):
    write_native_dataset(tmp_path / "native")
    store = lerobot_to_store(tmp_path / "native", tmp_path / "s.zarr")
    validate(store.path)
    assert store.fps == 30.0 and store.n_episodes == 2
    assert list(np.diff(store.episode_ends, prepend=0)) == [4, 6]
    assert store.schema["obs.state"].shape == (3,) and store.schema["obs.wrench"].dtype == "float64"
    assert store.schema["obs.front"].kind == "image" and store.schema["reward"].shape == ()
    # episode 1 ends with next.success -> success; its frames carry two tasks: the first is the task
    assert [store.episode_meta(i).success for i in range(2)] == [False, True]
    assert [store.episode_meta(i).task for i in range(2)] == ["pick", "pick"]
    assert store.episode_meta(1).extra["lerobot_frame_tasks"] == ["pick"] * 3 + ["place"] * 3

    store_to_lerobot(store, tmp_path / "again")
    a_info = json.loads((tmp_path / "native" / "meta" / "info.json").read_text())
    b_info = json.loads((tmp_path / "again" / "meta" / "info.json").read_text())
    assert a_info["features"] == b_info["features"]
    for key in ("fps", "robot_type", "total_episodes", "total_frames", "total_tasks"):
        assert a_info[key] == b_info[key], key
    a = pq.read_table(tmp_path / "native" / "data" / "chunk-000" / "file-000.parquet")
    b = pq.read_table(tmp_path / "again" / "data" / "chunk-000" / "file-000.parquet")
    assert a.schema.names == b.schema.names
    for name in a.schema.names:
        if name == "observation.images.front":  # compare pixels, not PNG bytes
            continue
        assert a.column(name).equals(b.column(name)), name
    ra = LeRobotDataset("local/native", root=tmp_path / "native")
    rb = LeRobotDataset("local/again", root=tmp_path / "again")
    for i in (0, 5, 9):
        fa, fb = ra[i], rb[i]
        assert fa["task"] == fb["task"]
        np.testing.assert_array_equal(
            fa["observation.images.front"].numpy(), fb["observation.images.front"].numpy()
        )
    assert list(ra.meta.tasks.index) == list(rb.meta.tasks.index)
    # and back once more: the store written from the re-export equals the first one
    again = lerobot_to_store(tmp_path / "again", tmp_path / "again.zarr")
    assert again.schema == store.schema
    for i in range(2):
        for name, values in store.episode(i).items():
            np.testing.assert_array_equal(again.episode(i)[name], values, err_msg=name)
        assert again.episode_meta(i) == store.episode_meta(i)


def test_bad_inputs_name_the_file(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match=r"meta/info\.json is missing"):
        lerobot_to_store(tmp_path, tmp_path / "x.zarr")
    foreign = tmp_path / "foreign" / "meta"
    foreign.mkdir(parents=True)
    (foreign / "info.json").write_text("not json")
    with pytest.raises(DatasetError, match=r"foreign: LeRobot cannot open it"):
        lerobot_to_store(tmp_path / "foreign", tmp_path / "f.zarr")
    store = make_rich_store(tmp_path / "a.zarr")
    store_to_lerobot(store, tmp_path / "lr")
    with pytest.raises(DatasetError, match="already exists"):
        store_to_lerobot(store, tmp_path / "lr")
    # an export that fails half-way (LeRobot refuses episode 1's third frame) leaves DST as it was
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "lr").rglob("*"))
    real_add_frame, added = LeRobotDataset.add_frame, []

    def refuse_the_eighth(dataset, frame):
        added.append(1)
        if len(added) == 8:
            raise ValueError("frame refused")
        real_add_frame(dataset, frame)

    monkeypatch.setattr(LeRobotDataset, "add_frame", refuse_the_eighth)
    with pytest.raises(DatasetError, match=r"a\.zarr, episode 1: LeRobot rejected frame 2: frame refused"):
        store_to_lerobot(store, tmp_path / "lr", overwrite=True)
    monkeypatch.undo()
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "lr").rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
    # a sidecar that no longer matches the dataset (LeRobot edited it since): refused, naming the file
    sidecar = tmp_path / "lr" / "meta" / "gipo_robot.json"
    data = json.loads(sidecar.read_text())
    data["episodes_total"] = 2
    sidecar.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"gipo_robot\.json.*written for 2 episodes but the dataset has 3"):
        lerobot_to_store(tmp_path / "lr", tmp_path / "b.zarr")
    # a string column (LeRobot 0.6 writes them) names the feature; no store is left behind
    notes = LeRobotDataset.create(
        "local/notes", fps=10, root=tmp_path / "notes", use_videos=False,
        features={"action": {"dtype": "float32", "shape": (2,), "names": None},
                  "note": {"dtype": "string", "shape": (1,), "names": None}},
    )  # fmt: skip
    for _ in range(3):
        notes.add_frame({"action": np.zeros(2, np.float32), "note": "hello", "task": "x"})
    notes.save_episode()
    notes.finalize()
    with pytest.raises(DatasetError, match=r"notes, feature 'note': dtype 'string' cannot be held"):
        lerobot_to_store(tmp_path / "notes", tmp_path / "notes.zarr")
    assert not (tmp_path / "notes.zarr").exists()
    odd = EpisodeStore.create(tmp_path / "odd.zarr", Schema((Feature("action", "float32", (1,)),)), fps=12.5)
    odd.append_episode({"action": np.zeros((2, 1), np.float32)})
    with pytest.raises(DatasetError, match=r"fps 12\.5 is not a whole number"):
        store_to_lerobot(odd, tmp_path / "odd")


def test_cli_convert_both_ways(tmp_path):
    make_rich_store(tmp_path / "a.zarr")
    out = run("convert", "a.zarr", "lr", "--to", "lerobot", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = one_json_object(out)
    assert (result["direction"], result["episodes"], result["steps"]) == ("zarr->lerobot", 3, 16)
    out = run("convert", "lr", "b.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert one_json_object(out)["direction"] == "lerobot->zarr"
    out = run("convert", "a.zarr", "x", "--to", "parquet", "--json", cwd=tmp_path)
    assert out.returncode == 1 and "--to 'parquet' is not a known target" in one_json_object(out)["error"]
