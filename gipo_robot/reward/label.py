"""Relabelling stored episodes: one episode at a time, or interactively with one key per episode.

The interactive session puts the terminal in cbreak mode (single keys, no echo; Ctrl-C still interrupts)
and restores its settings on the way out, on an exception or Ctrl-C too, as the keyboard teleop device
does (:mod:`gipo_robot.teleop.keyboard`). Keys: ``y`` success, ``n`` failure, ``s`` or Enter skip, ``q``
(or Ctrl-D) quit; anything else repeats the key list. Each answer is written at once
(:meth:`~gipo_robot.datasets.store.EpisodeStore.relabel`), so quitting or a kill keeps the labels given.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import tty
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from gipo_robot.datasets import DatasetError, EpisodeStore

KEYS: dict[str, bool | str] = {
    "y": True,
    "n": False,
    "s": "skip",
    "\r": "skip",
    "\n": "skip",
    "q": "quit",
    "\x04": "quit",  # Ctrl-D
    "\x03": "quit",  # Ctrl-C, where the terminal passes it through
}
PROMPT = "[y] success  [n] failure  [s/Enter] skip  [q] quit"


class TerminalRequired(RuntimeError):
    """Interactive labelling was asked for without a terminal to read keys from."""


def relabel_episode(store: EpisodeStore, episode: int, success: bool) -> dict[str, Any]:
    """Set one episode's label; returns ``{"store", "episode", "from", "to", "changed"}``.

    Raises:
        DatasetError: as :meth:`EpisodeStore.relabel` (read-only store, no such episode).
    """
    before = store.episode_meta(episode).success  # DatasetError for an episode out of range
    i = int(episode) + (store.n_episodes if episode < 0 else 0)
    store.relabel(i, success)
    return {
        "store": store.path,
        "episode": i,
        "from": before,
        "to": bool(success),
        "changed": before != success,
    }


def _label(success: bool) -> str:
    return "success" if success else "failure"


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Single keys without echo on terminal ``fd`` for the block; its settings restored afterwards.

    Raises:
        TerminalRequired: ``fd`` is not a terminal.
    """
    try:
        terminal = os.isatty(fd)
    except (OSError, ValueError):
        terminal = False
    if not terminal:
        raise TerminalRequired(
            "interactive labelling needs a terminal on standard input; "
            "label one episode with --episode N --success (or --failure)"
        )
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Keys:
    """Reads single keys from a cbreak terminal, dropping escape sequences (arrow keys)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = ""

    def next(self) -> str:
        while not self.pending:
            select.select([self.fd], [], [])
            data = os.read(self.fd, 64)
            if not data:
                return "\x04"  # the terminal closed: quit
            if data[0] == 0x1B:
                continue
            self.pending = "".join(chr(b) for b in data if b < 0x80)
        key, self.pending = self.pending[0], self.pending[1:]
        return key


def _ask(keys: _Keys, out: TextIO) -> bool | str:
    """The next recognised answer: True, False, ``"skip"`` or ``"quit"``."""
    while True:
        answer = KEYS.get(keys.next().lower())
        if answer is not None:
            return answer
        out.write(f"\n  keys: {PROMPT}: ")
        out.flush()


def label_interactively(
    store: EpisodeStore,
    *,
    fd: int | None = None,
    out: TextIO | None = None,
    episodes: Sequence[int] | None = None,
    unreviewed: bool = False,
) -> dict[str, Any]:
    """Show each episode and read one key for its label (see the module docstring).

    Args:
        store: an episode store open with mode ``"a"``.
        fd: the terminal to read keys from; None: standard input.
        out: where prompts go; None: standard output.
        episodes: the episodes to ask about, in order; None: every episode.
        unreviewed: skip episodes that were relabelled before (``extra["relabelled"]`` set).

    Returns:
        ``{"store", "reviewed", "changed": [{"episode", "from", "to"}], "skipped", "quit"}``.

    Raises:
        TerminalRequired: ``fd`` is not a terminal (naming ``--episode``).
        DatasetError: the store is read-only or an episode does not exist.
    """
    fd = sys.stdin.fileno() if fd is None else fd
    out = sys.stdout if out is None else out
    if store.mode != "a":
        raise DatasetError("store is open read-only (open it with mode='a' to relabel)", path=store.path)
    order = list(range(store.n_episodes)) if episodes is None else list(episodes)
    for e in order:
        store.episode_meta(e)  # DatasetError naming an episode out of range, before anything is asked
    table = store.meta_table()
    if unreviewed:
        order = [i for i in order if "relabelled" not in table["extra"][i]]
    result: dict[str, Any] = {"store": store.path, "reviewed": 0, "changed": [], "skipped": 0, "quit": False}
    with cbreak(fd):
        keys = _Keys(fd)
        for n, i in enumerate(order):
            current = bool(table["success"][i])
            out.write(
                f"episode {i} ({n + 1}/{len(order)})  source {table['source'][i]}  "
                f"length {int(table['length'][i])}  label {_label(current)}  {PROMPT}: "
            )
            out.flush()
            answer = _ask(keys, out)
            if answer == "quit":
                out.write("quit\n")
                result["quit"] = True
                break
            if answer == "skip":
                out.write("skipped\n")
                result["skipped"] += 1
                continue
            store.relabel(i, bool(answer))
            result["reviewed"] += 1
            if answer != current:
                result["changed"].append({"episode": i, "from": current, "to": bool(answer)})
            out.write(f"{_label(bool(answer))}{' (changed)' if answer != current else ''}\n")
            out.flush()
    return result
