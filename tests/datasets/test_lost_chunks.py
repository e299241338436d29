"""Lost and damaged chunk files: zarr reads a missing chunk as fill values (zeros, False, ""), so a deleted
file used to look like data and ``validate`` said clean. Every chunk is now written, missing ones are
named (array, chunk file, episodes), reads of them fail, and ``--deep`` names chunks that do not decode."""

from __future__ import annotations

import shutil

import pytest
import zarr

from gipo_robot.datasets import DatasetError, EpisodeStore, find_problems, validate
from gipo_robot.datasets.validate import ChunkProblem, report
from tests.datasets.helpers import make_episode, make_store, one_json_object, run, small_schema


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_lost_chunk_files_are_named_and_never_read_as_zeros(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=4).close()  # episodes of 4, 5, 6, 7 steps: rows 0..21, one action chunk (4096 rows)
    shutil.rmtree(path / "meta" / "episodes" / "success" / "c")  # the issue's `rm -r .../success/c`
    (path / "data" / "action" / "c.0.0").unlink()
    (path / "data" / "obs.cam" / "c.5.0.0.0").unlink()  # row 5: episode 1's second frame
    problems = find_problems(path, deep=False)
    assert all(isinstance(p, ChunkProblem) for p in problems)
    found = {(p.chunk, p.feature, p.episode) for p in problems}
    assert found == {
        ("meta/episodes/success/c/0", "meta/episodes/success", 0),
        ("data/action/c.0.0", "action", 0),
        ("data/obs.cam/c.5.0.0.0", "obs.cam", 1),
    }
    assert "(rows 0..21, episodes 0..3) is lost" in str(next(p for p in problems if "action" in p.chunk))
    store = EpisodeStore.open(path)
    with pytest.raises(DatasetError, match=r"meta/episodes/success.*chunk file c/0 is lost"):
        store.meta_table()  # was: every episode a failure, success rate 0.0
    with pytest.raises(
        DatasetError, match=r"feature 'action'.*chunk file c\.0\.0 \(rows 0\.\.4095\) is lost"
    ):
        store.episode(2, ["action"])  # was: all-zero actions


def test_deep_validation_names_truncated_and_corrupt_chunks(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=4).close()
    _truncate(path / "data" / "obs.cam" / "c.7.0.0.0")
    _truncate(path / "meta" / "episodes" / "task" / "c" / "0")
    shallow = {p.chunk for p in find_problems(path, deep=False)}
    assert shallow == {"meta/episodes/task/c/0"}  # the metadata is read even without --deep
    deep = find_problems(path, deep=True)
    assert {(p.chunk, p.episode) for p in deep} == {
        ("meta/episodes/task/c/0", 0),
        ("data/obs.cam/c.7.0.0.0", 1),
    }
    assert all("does not decode" in str(p) for p in deep)


def test_every_chunk_is_written_even_all_zero_ones(tmp_path):
    path = tmp_path / "s.zarr"
    store = EpisodeStore.create(path, small_schema(), fps=20.0)
    ep = make_episode(0)
    ep["action"][:] = 0.0  # a chunk of fill values: zarr's default writes no file for it
    store.append_episode(ep, success=False)  # and success=False, the fill value of meta/episodes/success
    store.close()
    assert (path / "data" / "action" / "c.0.0").is_file()
    assert (path / "meta" / "episodes" / "success" / "c" / "0").is_file()
    assert report(path) == {
        "store": str(path),
        "ok": True,
        "deep": False,
        "chunk_files_checked": True,
        "episodes": 1,
        "steps": 4,
        "problems": [],
    }


def test_stores_written_before_every_chunk_was_written_are_not_falsely_flagged(tmp_path):
    path = tmp_path / "old.zarr"
    store = EpisodeStore.create(path, small_schema(), fps=20.0)
    store.append_episode(make_episode(0), success=False)
    store.close()
    del zarr.open_group(str(path), mode="r+").attrs["every_chunk_written"]  # as stores written before
    shutil.rmtree(path / "meta" / "episodes" / "success" / "c")  # what zarr skipped then: all False
    result = report(path, deep=True)
    assert result["ok"] and not result["chunk_files_checked"]
    assert not EpisodeStore.open(path).meta_table()["success"].any()
    appended = EpisodeStore.open(path, "a")  # appending to it does not make the old chunks checkable
    appended.append_episode(make_episode(1))
    appended.close()
    assert report(path)["chunk_files_checked"] is False


def test_a_commit_cut_short_in_a_new_chunk_is_not_a_lost_chunk(tmp_path):
    path = tmp_path / "s.zarr"
    EpisodeStore.create(path, small_schema(), fps=20.0).close()
    ends = zarr.open_array(str(path / "meta" / "episode_ends"), mode="r+")
    ends.resize((1,))  # killed after growing episode_ends, before writing its first chunk
    assert not (path / "meta" / "episode_ends" / "c" / "0").exists()
    assert validate(path).n_episodes == 0
    store = EpisodeStore.open(path, "a")
    store.append_episode(make_episode(3))
    store.close()
    assert EpisodeStore.open(path).n_episodes == 1
    # Two committed episodes and their episode_ends chunk deleted: lost, not "cut short".
    make_store(tmp_path / "t.zarr", n=2).close()
    (tmp_path / "t.zarr" / "meta" / "episode_ends" / "c" / "0").unlink()
    with pytest.raises(DatasetError, match=r"chunk file c/0 of meta/episode_ends is lost"):
        EpisodeStore.open(tmp_path / "t.zarr")


def test_validate_command_and_info_report_lost_chunks(tmp_path):
    make_store(tmp_path / "s.zarr", n=4).close()
    out = run("validate", "s.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 0 and one_json_object(out)["ok"] is True
    assert one_json_object(run("info", "s.zarr", "--json", cwd=tmp_path))["success_rate"] == 0.5
    shutil.rmtree(tmp_path / "s.zarr" / "meta" / "episodes" / "success" / "c")
    _truncate(tmp_path / "s.zarr" / "data" / "obs.cam" / "c.3.0.0.0")
    out = run("validate", "s.zarr", "--json", cwd=tmp_path)
    result = one_json_object(out)
    assert out.returncode == 1 and result["ok"] is False and result["store"] == "s.zarr"
    assert [p["chunk"] for p in result["problems"]] == ["meta/episodes/success/c/0"]
    assert (
        result["problems"][0]["feature"] == "meta/episodes/success" and result["problems"][0]["episode"] == 0
    )
    out = run("validate", "s.zarr", "--deep", "--json", cwd=tmp_path)
    chunks = [p["chunk"] for p in one_json_object(out)["problems"]]
    assert out.returncode == 1 and chunks == ["meta/episodes/success/c/0", "data/obs.cam/c.3.0.0.0"]
    out = run("validate", "s.zarr", cwd=tmp_path)
    assert out.returncode == 1 and "meta/episodes/success/c/0" in out.stdout
    out = run("info", "s.zarr", "--json", cwd=tmp_path)  # was: success_rate 0.0, exit 0
    assert (
        out.returncode == 1
        and "chunk file(s) are lost (meta/episodes/success/c/0)" in one_json_object(out)["error"]
    )
