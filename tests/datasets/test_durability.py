"""A commit is durable: every file the episode wrote is flushed (``fsync``) before the new episode end is
written, and the end after it. Observed through ``os.fsync`` itself (the file behind each descriptor), not
through the store's own helpers; a power cut cannot be staged in a test."""

from __future__ import annotations

import os

from tests.datasets.helpers import make_episode, make_store


def _spy(monkeypatch) -> list[str]:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(
            os.readlink(f"/proc/self/fd/{fd}")
        )  # commits fsync from a few threads: append is atomic
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_a_commit_flushes_its_files_then_the_episode_end(tmp_path, monkeypatch):
    root = os.path.realpath(tmp_path / "s.zarr")
    store = make_store(tmp_path / "s.zarr", n=1)  # episode 0: rows 0..3
    synced = _spy(monkeypatch)
    w = store.writer(flush_steps=2)
    ep = make_episode(1)  # episode 1: 5 steps, rows 4..8
    for t in range(len(ep["action"])):
        w.add({k: v[t] for k, v in ep.items()})
        if t < 4:
            assert synced == []  # flushes in the control loop are not fsynced
    w.commit(success=True)
    files = [os.path.relpath(p, root) for p in synced]
    end = files.index(os.path.join("meta", "episode_ends", "c", "0"))
    before = set(files[:end])
    frames = {f"data/obs.cam/c.{row}.0.0.0" for row in range(4, 9)}  # one chunk file per frame
    assert frames <= before
    assert {"data/action/c.0.0", "data/action/zarr.json", "data/action", "data", "."} <= before
    assert {"meta/episodes/success/c/0", "meta/episodes/length/c/0", "meta/episodes/extra/c/0"} <= before
    assert "meta/episode_ends/c/0" not in before  # the end only once the rows it points at are on disk
    assert {"meta/episode_ends/zarr.json", "meta/episode_ends/c", "meta/episode_ends"} <= set(files[end:])
    synced.clear()
    store.relabel(1, False)
    assert {"meta/episodes/success/c/0", "meta/episodes/extra/c/0"} <= {
        os.path.relpath(p, root) for p in synced
    }
    synced.clear()
    store.durable = False  # only to measure what durability costs
    store.append_episode(make_episode(2))
    assert synced == []
