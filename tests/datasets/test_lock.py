"""The writer lock: a second process that tries to write a store (append, overwrite, convert into it,
collect demos into it) gets an error naming the process that holds it, while readers read on; a writer
killed with SIGKILL leaves the store unlocked. Every test runs a real second process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from gipo_robot.datasets import DatasetError, EpisodeStore
from gipo_robot.datasets.lock import lock_path
from tests.datasets.helpers import (
    assert_episode_equal,
    make_episode,
    make_store,
    one_json_object,
    run,
    small_schema,
    write_robomimic,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Opens the store for appending, streams half of episode 10 (flushed to disk, uncommitted), says
# "ready", then waits for a line on stdin before finishing and committing the episode.
HOLDER = r"""
import sys
from gipo_robot.datasets import EpisodeStore
from tests.datasets.helpers import make_episode

store = EpisodeStore.open(sys.argv[1], "a")
ep = make_episode(10, length=8)
w = store.writer(flush_steps=2, source="teleop")
for t in range(4):
    w.add({k: v[t] for k, v in ep.items()})
print("ready", flush=True)
sys.stdin.readline()
for t in range(4, 8):
    w.add({k: v[t] for k, v in ep.items()})
print("committed", w.commit(success=True), flush=True)
"""


def _start_holder(path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    return proc


def test_a_second_process_cannot_append_or_overwrite_while_another_writes(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=2).close()
    holder = _start_holder(path)
    try:
        # A live writer's temporary file (zarr writes <chunk>.<uuid>.partial, then renames it).
        in_flight = path / "data" / "action" / "c.0.0.0123abcd.partial"
        in_flight.write_bytes(b"half-written chunk")
        who = rf"s\.zarr: is being written by process {holder.pid};"
        with pytest.raises(DatasetError, match=who):
            EpisodeStore.open(path, "a")
        assert in_flight.exists()  # the second opener did not clean the live writer's files
        with pytest.raises(DatasetError, match=who):
            EpisodeStore.create(path, small_schema(), fps=20.0, overwrite=True)
        reader = EpisodeStore.open(path)  # readers are never blocked
        assert reader.n_episodes == 2
        in_flight.unlink()
        out, err = holder.communicate("go\n", timeout=60)
        assert holder.returncode == 0 and out.split() == ["committed", "2"], err
    finally:
        holder.kill()
    store = EpisodeStore.open(path, "a")  # the holder is gone: writing works again
    assert store.n_episodes == 3
    assert_episode_equal(store.episode(2), make_episode(10, length=8))
    store.close()
    assert not lock_path(path).exists()  # a writer that ends normally removes its lock file


def test_convert_and_collect_demos_refuse_to_overwrite_a_store_being_written(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=2).close()
    write_robomimic(tmp_path / "demo.hdf5")
    holder = _start_holder(path)
    try:
        out = run("convert", "demo.hdf5", "s.zarr", "--overwrite", "--json", cwd=tmp_path)
        assert out.returncode == 1
        assert f"being written by process {holder.pid}" in one_json_object(out)["error"]
        assert EpisodeStore.open(path).n_episodes == 2  # not replaced
        out = run(
            "collect-demos", "--episodes", "1", "--out", "s.zarr", "--overwrite", "--json", cwd=tmp_path
        )
        assert out.returncode != 0 and f"being written by process {holder.pid}" in out.stdout + out.stderr
        assert EpisodeStore.open(path).n_episodes == 2
        holder.communicate("go\n", timeout=60)
    finally:
        holder.kill()
    assert EpisodeStore.open(path).n_episodes == 3


def test_a_sigkilled_writer_leaves_the_store_unlocked(tmp_path):
    path = tmp_path / "s.zarr"
    make_store(path, n=2).close()
    holder = _start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    assert lock_path(path).exists()  # left behind, but the kernel dropped the flock with the process
    store = EpisodeStore.open(path, "a")
    assert store.n_episodes == 2  # the killed writer's half episode is not committed
    store.append_episode(make_episode(5))
    store.close()
    assert EpisodeStore.open(path).n_episodes == 3 and not lock_path(path).exists()


def test_writers_in_one_process_share_the_lock_and_close_releases_it(tmp_path):
    path = tmp_path / "s.zarr"
    store = make_store(path, n=1)
    again = EpisodeStore.open(path, "a")  # e.g. `store = EpisodeStore.open(path, "a")` rebinding a name
    store.close()
    assert lock_path(path).exists()  # still held by `again`
    with pytest.raises(DatasetError, match="read-only"):
        store.append_episode(make_episode(1))  # a closed store reads but no longer writes
    assert store.n_episodes == 1
    with again:
        again.append_episode(make_episode(1))
    assert not lock_path(path).exists()
    # A forked child is another process: it must take the lock itself, and cannot while we hold it.
    holder = EpisodeStore.open(path, "a")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            EpisodeStore.open(path, "a")
            os._exit(1)
        except DatasetError as err:
            os._exit(0 if f"process {os.getppid()}" in str(err) else 2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    holder.close()


def test_a_store_in_a_new_folder_and_one_store_under_two_names(tmp_path):
    store = EpisodeStore.create(tmp_path / "runs" / "new" / "s.zarr", small_schema(), fps=20.0)
    store.append_episode(make_episode(0))  # the folder is created, as before the lock existed
    store.close()
    (tmp_path / "link.zarr").symlink_to(tmp_path / "runs" / "new" / "s.zarr")
    holder = _start_holder(tmp_path / "link.zarr")
    try:
        with pytest.raises(DatasetError, match=f"being written by process {holder.pid}"):
            EpisodeStore.open(tmp_path / "runs" / "new" / "s.zarr", "a")  # the same store by its real name
    finally:
        holder.kill()
        holder.communicate(timeout=30)
