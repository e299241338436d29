"""Relabelling stored episodes: ``EpisodeStore.relabel``, ``gipo-robot label --episode N``, and the
interactive session driven by real keystrokes through a pseudo-terminal (bytes pass the kernel's tty line
discipline, so cbreak mode is what lets single keys through, as in tests/teleop/test_keyboard.py)."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import termios
import threading
import time

import pytest

from gipo_robot.datasets import DatasetError, EpisodeStore, validate
from gipo_robot.reward.label import TerminalRequired, label_interactively
from tests.datasets.helpers import make_episode, make_store

GIPO = os.path.join(os.path.dirname(sys.executable), "gipo-robot")


@pytest.fixture
def store(tmp_path):
    """Four episodes: 0 and 2 failed demos, 1 and 3 successful rollouts (tests/datasets/helpers.py)."""
    return make_store(tmp_path / "s.zarr", 4)


def labels(path) -> list[bool]:
    opened = EpisodeStore.open(path)
    return [opened.episode_meta(i).success for i in range(opened.n_episodes)]


# ------------------------------------------------------------------------------ EpisodeStore.relabel


def test_relabel_changes_the_label_records_it_and_survives_reopening(store):
    before = time.time()
    store.relabel(0, True)
    store.relabel(-1, False)  # episode 3
    assert store.episode_meta(0).success is True
    assert labels(store.path) == [True, True, False, False]
    note = EpisodeStore.open(store.path).episode_meta(0).extra["relabelled"]
    assert note["from"] is False and note["to"] is True and note["time"] >= before
    assert EpisodeStore.open(store.path).episode_meta(3).extra["relabelled"]["from"] is True
    assert EpisodeStore.open(store.path).info()["success_rate"] == 0.5
    validate(store.path)  # still a valid store


def test_relabel_keeps_other_extra_keys_and_confirms_an_unchanged_label(store):
    store.append_episode(make_episode(5), success=True, extra={"seed": 5, "noise": 0.1})
    store.relabel(4, True)  # the same label: recorded as confirmed, success unchanged
    meta = EpisodeStore.open(store.path).episode_meta(4)
    assert meta.success is True and meta.extra["seed"] == 5 and meta.extra["noise"] == 0.1
    assert meta.extra["relabelled"]["from"] is True and meta.extra["relabelled"]["to"] is True


def test_relabel_refuses_out_of_range_read_only_and_non_bool(store):
    with pytest.raises(DatasetError, match=r"s\.zarr, episode 4: no such episode \(the store has 4\)"):
        store.relabel(4, True)
    with pytest.raises(DatasetError, match="success must be a bool"):
        store.relabel(0, 1)
    read_only = EpisodeStore.open(store.path)
    with pytest.raises(DatasetError, match=r"s\.zarr: store is open read-only"):
        read_only.relabel(0, True)
    assert labels(store.path) == [False, True, False, True]


def test_a_relabelled_store_still_appends(store):
    store.relabel(2, True)
    assert store.append_episode(make_episode(9), success=False) == 4
    assert labels(store.path) == [False, True, True, True, False]


# ------------------------------------------------------------------------------ gipo-robot label --episode


def run(*args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([GIPO, "label", *args], capture_output=True, text=True, stdin=stdin, timeout=120)


def test_label_one_episode_json(store):
    store.close()  # the command is another process: it takes the store's writer lock
    out = run(store.path, "--episode", "0", "--success", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "store": store.path,
        "episode": 0,
        "from": False,
        "to": True,
        "changed": True,
    }
    out = run(store.path, "--episode", "-1", "--failure", "--json")
    assert json.loads(out.stdout)["episode"] == 3
    assert labels(store.path) == [True, True, False, False]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episode", "9", "--success"], "episode 9: no such episode (the store has 4)"),
        (["--episode", "1", "--success", "--failure"], "give one of --success and --failure"),
        (["--episode", "1"], "--episode 1 needs --success or --failure"),
        (["--success"], "give it with --episode N"),
        ([], "needs a terminal on standard input; label one episode with --episode N"),
    ],
)
def test_label_errors_are_one_json_object_and_exit_1(store, args, message):
    store.close()  # the command is another process: it takes the store's writer lock
    out = run(store.path, *args, "--json")
    assert out.returncode == 1
    assert message in json.loads(out.stdout)["error"]
    assert labels(store.path) == [False, True, False, True]


def test_label_on_a_missing_store_is_an_error(tmp_path):
    out = run(str(tmp_path / "none.zarr"), "--episode", "0", "--success")
    assert out.returncode == 1 and "error:" in out.stderr


# ------------------------------------------------------------------------------ interactive, through a pty


def type_later(master: int, keys: bytes, delay: float = 0.1) -> threading.Thread:
    """Type ``keys`` one by one on the terminal's master end while the session reads the slave end."""

    def typing() -> None:
        for key in keys:
            time.sleep(delay)
            os.write(master, bytes([key]))

    thread = threading.Thread(target=typing, daemon=True)
    thread.start()
    return thread


def test_interactive_session_labels_skips_and_quits(store, terminal):
    master, slave = terminal
    before = termios.tcgetattr(slave)
    prompts = io.StringIO()
    # episode 0: y (failure -> success); 1: x (unknown, asks again) then n; 2: Enter skips; 3: q quits
    typer = type_later(master, b"yxn\rq")
    result = label_interactively(store, fd=slave, out=prompts)
    typer.join()
    assert result == {
        "store": store.path,
        "reviewed": 2,
        "changed": [{"episode": 0, "from": False, "to": True}, {"episode": 1, "from": True, "to": False}],
        "skipped": 1,
        "quit": True,
    }
    assert labels(store.path) == [True, False, False, True]
    text = prompts.getvalue()
    assert "episode 0 (1/4)  source demo  length 4  label failure" in text
    assert "success (changed)" in text and "keys: [y] success" in text and "skipped" in text
    assert termios.tcgetattr(slave) == before  # the terminal is restored


def test_interactive_unreviewed_asks_only_about_episodes_never_relabelled(store, terminal):
    master, slave = terminal
    store.relabel(0, False)
    store.relabel(2, False)
    prompts = io.StringIO()
    typer = type_later(master, b"ny")  # asked about 1 and 3 only: 1 becomes a failure, 3 stays a success
    result = label_interactively(store, fd=slave, out=prompts, unreviewed=True)
    typer.join()
    assert result["reviewed"] == 2 and result["changed"] == [{"episode": 1, "from": True, "to": False}]
    assert labels(store.path) == [False, False, False, True]
    assert "episode 1 (1/2)" in prompts.getvalue() and "episode 3 (2/2)" in prompts.getvalue()


def test_interactive_without_a_terminal_fails_clearly(store, tmp_path):
    with open(tmp_path / "not-a-tty", "w+") as f, pytest.raises(TerminalRequired, match="--episode N"):
        label_interactively(store, fd=f.fileno(), out=io.StringIO())


def test_label_command_interactive_on_a_pty(store, terminal):
    """The console script with its standard input on a pty: prompts on stdout, one key per episode."""
    store.close()  # the command is another process: it takes the store's writer lock
    master, slave = terminal
    child = subprocess.Popen(
        [GIPO, "label", store.path, "--json"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen = b""
    deadline = time.monotonic() + 60
    for key in b"nnyq":  # wait for each prompt before typing the next key
        want = seen.count(b"[q] quit") + 1
        while seen.count(b"[q] quit") < want and time.monotonic() < deadline:
            ready, _, _ = select.select([child.stderr], [], [], 0.5)
            if ready:
                seen += os.read(child.stderr.fileno(), 4096)
        os.write(master, bytes([key]))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, (seen + err).decode()[-2000:]
    result = json.loads(out)  # --json: prompts went to stderr, one object on stdout
    assert result["reviewed"] == 3 and result["quit"] is True
    assert result["changed"] == [
        {"episode": 1, "from": True, "to": False},
        {"episode": 2, "from": False, "to": True},
    ]
    assert labels(store.path) == [False, False, True, True]
