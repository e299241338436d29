"""A reader that refreshes while another writer commits an episode sees a consistent store: never "N rows but
the committed episodes end at M" (the on-arm learner refreshes the actor's store this way, and once failed
so). The commit is forced into the worst moment of the reader's load: just before it opens the episode
ends, which it used to do after opening the data arrays."""

from __future__ import annotations

import numpy as np

from gipo_robot.datasets import EpisodeStore, Feature, Schema


def test_a_commit_during_a_refresh_is_either_seen_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    schema = Schema([Feature("obs.x", "float32", (3,)), Feature("action", "float32", (2,))])
    writer = EpisodeStore.create(path, schema, fps=10)
    reader = EpisodeStore.open(path)
    original = EpisodeStore._open_array
    committed = []

    def commit_first(self, key, *args, **kwargs):  # another writer commits just before the ends are opened
        if key == "meta/episode_ends" and self is reader and not committed:
            steps = {"obs.x": np.ones((30, 3), np.float32), "action": np.ones((30, 2), np.float32)}
            writer.append_episode(steps)
            committed.append(True)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(EpisodeStore, "_open_array", commit_first)
    reader.refresh()  # the arrays used to be opened (0 rows) before the ends were read (30): DatasetError
    assert committed and reader.n_episodes == 1 and reader.episode(0)["obs.x"].shape == (30, 3)
    writer.close()
