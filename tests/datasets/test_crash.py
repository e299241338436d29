"""Crash safety: a recorder killed with SIGKILL at random moments loses at most the episode in flight.

One store is shared by every trial, so each trial also starts from whatever the previous kill left
(rows past the committed end, a grown-but-unwritten episode_ends, temp files of interrupted writes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from gipo_robot.datasets import EpisodeStore, validate
from tests.datasets.helpers import assert_episode_equal, make_episode, small_schema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The recorder: opens the store for appending and records episodes forever, alternating whole-episode
# appends and streamed episodes (some discarded), printing "committed <index>" after each commit returns.
RECORDER = r"""
import sys
import numpy as np
from gipo_robot.datasets import EpisodeStore
from tests.datasets.helpers import make_episode

store = EpisodeStore.open(sys.argv[1], "a")
print("ready", store.n_episodes, flush=True)
k = 0
while True:
    index = store.n_episodes
    ep = make_episode(index)
    if k % 3 == 0:
        store.append_episode(ep, source="rollout", success=True, policy_version=index)
    else:
        w = store.writer(flush_steps=3, source="teleop")
        if k % 5 == 4:  # a discarded attempt first: rows written past the end, never committed
            junk = make_episode(10_000 + index)
            for t in range(len(junk["action"])):
                w.add({key: v[t] for key, v in junk.items()})
            w.discard()
            w = store.writer(flush_steps=3, source="teleop")
        for t in range(len(ep["action"])):
            w.add({key: v[t] for key, v in ep.items()})
        w.commit(success=False)
    print("committed", index, flush=True)
    k += 1
"""

TRIALS = 24


def _run_and_kill(path: str, delay: float) -> tuple[int, list[int]]:
    """Start the recorder, kill it ``delay`` s after its first commit; return (start episodes, committed)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(
        [sys.executable, "-c", RECORDER, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first = proc.stdout.readline().split()
    assert first[:1] == ["ready"], proc.stderr.read()
    # Wait for one commit before the random delay, so every trial records something however loaded the
    # machine is (the delay then lands the kill at a random point of a later episode).
    seen = proc.stdout.readline()
    assert seen.startswith("committed"), proc.stderr.read()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    lines = [seen, *out.splitlines()]
    committed = [int(line.split()[1]) for line in lines if line.startswith("committed")]
    return int(first[1]), committed


def test_sigkill_at_random_moments_keeps_every_committed_episode(tmp_path):
    path = str(tmp_path / "crash.zarr")
    EpisodeStore.create(path, small_schema(), fps=20)
    rng = np.random.default_rng(1234)
    reported = 0  # episodes whose commit the recorders reported before being killed
    mid_episode = 0  # kills that left uncommitted rows behind (the interesting case)
    for trial in range(TRIALS):
        start, committed = _run_and_kill(path, delay=float(rng.uniform(0.0, 0.25)))
        assert committed == list(range(start, start + len(committed))), trial
        reported = start + len(committed)
        store = validate(path)  # opens and validates, whatever the kill interrupted
        # Every reported episode is there; at most one more (committed, killed before it printed).
        assert store.n_episodes in (reported, reported + 1), (trial, store.n_episodes, reported)
        mid_episode += store.array("action").shape[0] > store.n_steps
    assert reported >= TRIALS  # the kills landed while episodes were being recorded
    assert mid_episode >= 3, mid_episode
    store = EpisodeStore.open(path, "a")  # a writer after the last kill cleans up and appends fine
    assert not list((tmp_path / "crash.zarr").rglob("*.partial"))
    store.append_episode(make_episode(store.n_episodes))
    for i in range(store.n_episodes):
        assert_episode_equal(store.episode(i), make_episode(i))
        meta = store.episode_meta(i)
        assert meta.source in ("rollout", "teleop", "demo") and meta.length == len(make_episode(i)["action"])
