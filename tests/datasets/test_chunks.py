"""The direct chunk-file reader: the same bytes as plain zarr, committed rows only, and zarr as fallback.

Every check compares :meth:`EpisodeStore.read_rows`/``read_steps`` (which take the direct path for
local stores) against ``zarr.open_group(path)["data/<feature>"]`` read by zarr itself.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, GzipCodec
from zarr.storage import LocalStore

import gipo_robot.datasets.layout as layout_module
from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema
from gipo_robot.datasets.chunks import PARALLEL_CHUNKS, ChunkReader
from tests.datasets.helpers import make_episode, make_store, small_schema


def _zarr_rows(path, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows read by plain zarr (no gipo-robot code but the registered image codec)."""
    arr = zarr.open_group(str(path), mode="r")[f"data/{name}"]
    unique, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(arr.oindex[unique])[inverse]


def _assert_same_as_zarr(store: EpisodeStore, rows: np.ndarray) -> None:
    got = store.read_rows(rows)
    for name, values in got.items():
        want = _zarr_rows(store.path, name, rows)
        assert values.dtype == want.dtype, name
        np.testing.assert_array_equal(values, want, err_msg=name)


def _mixed_schema(codec: str) -> Schema:
    """One image feature with ``codec`` and low-dim features of every dtype kind."""
    return Schema(
        (
            Feature("obs.cam", "uint8", (6, 5, 3), "image", codec=codec),
            Feature("obs.state", "float64", (4,)),
            Feature("action", "float32", (2,)),
            Feature("count", "int16", (), "scalar"),
            Feature("flag", "bool", (), "scalar"),
            Feature("label", "uint8", (3,)),
        )
    )


def _mixed_episode(seed: int, t: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs.cam": rng.integers(0, 256, size=(t, 6, 5, 3), dtype=np.uint8),
        "obs.state": rng.normal(size=(t, 4)),
        "action": rng.normal(size=(t, 2)).astype(np.float32),
        "count": rng.integers(-300, 300, size=t).astype(np.int16),
        "flag": rng.random(t) < 0.5,
        "label": rng.integers(0, 256, size=(t, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("codec", ["qoi", "png", "webp", "jpeg", "none"])
def test_direct_reads_equal_zarr_for_every_codec_and_dtype(tmp_path, codec):
    store = EpisodeStore.create(tmp_path / "s.zarr", _mixed_schema(codec), fps=10)
    # 600 steps: several low-dim chunks (bool: 16384 rows a chunk, float64 x4: 2048), and 600 frame chunks
    for seed, t in enumerate([250, 7, 343]):
        store.append_episode(_mixed_episode(seed, t))
    store = EpisodeStore.open(store.path)
    assert all(reader is not None for reader in store._readers.values())
    rng = np.random.default_rng(0)
    _assert_same_as_zarr(store, rng.integers(0, store.n_steps, size=300))  # repeats, unsorted, threaded
    _assert_same_as_zarr(store, np.array([599, 0, 599]))
    _assert_same_as_zarr(store, np.array([], dtype=np.int64))
    for name, values in store.read_steps(245, 260).items():
        np.testing.assert_array_equal(values, _zarr_rows(store.path, name, np.arange(245, 260)))


def test_large_read_uses_the_thread_pool_and_matches_a_serial_read(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=9)  # 4..12 steps each: 72 frames
    reader = store._readers["obs.cam"]
    rows = np.arange(store.n_steps)
    assert rows.size >= 2 * PARALLEL_CHUNKS  # big enough to be split into pool tasks
    pooled = reader.read(rows, store._thread_pool())
    np.testing.assert_array_equal(pooled, reader.read(rows, None))
    np.testing.assert_array_equal(pooled, _zarr_rows(store.path, "obs.cam", rows))


def test_uncommitted_rows_stay_invisible_and_appends_are_seen(tmp_path):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=2)  # rows 0..8 committed (lengths 4 and 5)
    with store.writer(flush_steps=2) as w:  # flushes 6 garbage rows 9..14 into the shared chunks, discarded
        for k in range(6):
            step = {key: v[0] for key, v in make_episode(50 + k, length=1).items()}
            w.add(step)
    before = store.read_rows(np.arange(9))  # caches the low-dim chunk holding rows 0..14
    with pytest.raises(DatasetError, match="outside the committed 0:9"):
        store.read_rows(np.array([9]))
    with pytest.raises(DatasetError, match="outside the committed"):
        store.read_steps(0, 10)
    # the next append overwrites the garbage rows; the cached chunk must not hide the new values
    store.append_episode(make_episode(7))
    new = store.read_rows(np.arange(9, 9 + 11))
    for key, value in make_episode(7).items():
        np.testing.assert_array_equal(new[key], value.astype(new[key].dtype), err_msg=key)
    after = store.read_rows(np.arange(9))
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    _assert_same_as_zarr(store, np.arange(store.n_steps))


def test_reader_in_another_store_object_sees_new_episodes_after_refresh(tmp_path):
    path = tmp_path / "s.zarr"
    writer = make_store(path, n=2)
    reader = EpisodeStore.open(path, "r")
    reader.read_rows(np.arange(reader.n_steps))  # warm the low-dim cache
    writer.append_episode(make_episode(5))
    assert reader.n_steps == 9  # not refreshed: the new episode is invisible
    reader.refresh()
    rows = np.arange(9, reader.n_steps)
    np.testing.assert_array_equal(reader.read_rows(rows, ["action"])["action"], make_episode(5)["action"])
    _assert_same_as_zarr(reader, np.arange(reader.n_steps))


def test_drop_and_merge_read_the_same_as_zarr(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=4)
    store.read_rows(np.arange(store.n_steps))  # warm the cache before the rewrite
    store.drop_episode(1)
    _assert_same_as_zarr(store, np.arange(store.n_steps))
    other = make_store(tmp_path / "o.zarr", n=2)
    store.merge(other)
    _assert_same_as_zarr(store, np.arange(store.n_steps)[::-1])


def test_missing_chunk_is_lost_where_every_chunk_is_written_else_reads_as_fill_like_zarr(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=2)
    frame = tmp_path / "s.zarr" / "data" / "obs.cam" / "c.3.0.0.0"
    frame.unlink()
    with pytest.raises(
        DatasetError, match=r"feature 'obs.cam'.*chunk file c\.3\.0\.0\.0 \(rows 3\.\.3\) is lost"
    ):
        EpisodeStore.open(store.path).read_rows(np.array([3, 2]), ["obs.cam"])
    # A store written before every chunk was written may lack an all-zero chunk: read as zarr does.
    del zarr.open_group(store.path, mode="r+").attrs["every_chunk_written"]
    got = EpisodeStore.open(store.path).read_rows(np.array([3, 2]), ["obs.cam"])["obs.cam"]
    np.testing.assert_array_equal(got[0], np.zeros((8, 8, 3), np.uint8))
    np.testing.assert_array_equal(got, _zarr_rows(store.path, "obs.cam", np.array([3, 2])))


@pytest.mark.parametrize("name, chunk", [("obs.cam", "c.2.0.0.0"), ("action", "c.0.0")])
def test_damaged_chunk_is_a_dataset_error_naming_the_feature(tmp_path, name, chunk):
    store = make_store(tmp_path / "s.zarr", n=2)
    f = tmp_path / "s.zarr" / "data" / name / chunk
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"feature '{name}'.*CRC32C"):
        EpisodeStore.open(store.path).read_rows(np.array([2]), [name])


def test_stores_with_nested_chunk_folders_take_the_direct_path(tmp_path, monkeypatch):
    # stores written before chunk files were named c.<i>.0.0.0 use zarr's default c/<i>/0/0/0
    monkeypatch.setattr(layout_module, "CHUNK_KEY_ENCODING", {"name": "default"})
    store = make_store(tmp_path / "s.zarr", n=3)
    assert (tmp_path / "s.zarr" / "data" / "obs.cam" / "c" / "0" / "0" / "0" / "0").is_file()
    assert store._readers["obs.cam"] is not None
    _assert_same_as_zarr(store, np.array([14, 0, 7, 7]))


def test_unknown_codecs_and_remote_stores_fall_back_to_zarr(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=3)
    # rewrite data/action with gzip, which the direct reader does not decode
    root = zarr.open_group(str(path), mode="r+")
    values = root["data/action"][:]
    del root["data/action"]
    arr = root.create_array(
        "data/action", shape=values.shape, chunks=(4, 3), dtype="float32", compressors=[GzipCodec()]
    )
    arr[:] = values
    # and data/reward with sharding (inner chunks of 4 rows in shards of 8)
    rewards = root["data/reward"][:]
    del root["data/reward"]
    sharded = root.create_array(
        "data/reward", shape=rewards.shape, chunks=(4,), shards=(8,), dtype="float32", serializer=BytesCodec()
    )
    sharded[:] = rewards
    store = EpisodeStore.open(path)
    assert store._readers["action"] is None and store._readers["reward"] is None
    assert store._readers["obs.cam"] is not None
    rows = np.array([13, 2, 2, 0])
    _assert_same_as_zarr(store, rows)
    remote = EpisodeStore.open(f"file://{path}")
    # zarr < 3.4 opens a file:// URL through fsspec, which never takes the direct path; zarr >= 3.4 opens it
    # as the local folder it is (a LocalStore), where the direct path is right.
    if not isinstance(zarr.open_group(f"file://{path}", mode="r").store, LocalStore):
        assert all(reader is None for reader in remote._readers.values())
    for key, value in remote.read_rows(rows).items():
        np.testing.assert_array_equal(value, store.read_rows(rows)[key])


def test_memory_store_arrays_have_no_direct_reader():
    arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 2), chunks=(2, 2), dtype="float32")
    assert ChunkReader.for_array(arr) is None


def _read_in_child(store: EpisodeStore, queue) -> None:
    queue.put(store.read_rows(np.arange(store.n_steps), ["obs.cam"])["obs.cam"].sum())


def test_forked_child_reads_with_its_own_thread_pool(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=9)
    want = store.read_rows(np.arange(store.n_steps), ["obs.cam"])["obs.cam"]  # the parent's pool exists
    assert store._pool is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(store, queue))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, "the child hung or failed reading through an inherited thread pool"
    assert queue.get(timeout=5) == want.sum()


def test_qoi_is_lossless_and_needs_three_or_four_channels(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", small_schema("qoi"), fps=10)
    ep = make_episode(3)
    store.append_episode(ep)
    np.testing.assert_array_equal(EpisodeStore.open(store.path).episode(0)["obs.cam"], ep["obs.cam"])
    with pytest.raises(DatasetError, match="'qoi' needs 3 or 4 channels"):
        Feature("obs.depth", "uint8", (8, 8, 1), "image", codec="qoi")
