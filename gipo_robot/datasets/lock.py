"""The writer lock of an episode store: one writing process at a time.

Every way of writing a store takes it first: :meth:`~gipo_robot.datasets.store.EpisodeStore.create`
(also with ``overwrite``), ``EpisodeStore.open(path, "a")`` and a conversion into the store
(:func:`~gipo_robot.datasets.importers.import_dataset`). It is an exclusive, non-blocking ``flock`` on
``<store>.lock``, a file next to the store folder (next to it, not inside: an overwrite deletes the folder,
and the lock must cover that too). A second process that tries to write gets a :class:`DatasetError`
naming the store and the process holding it; readers (mode ``"r"``) take no lock and are never blocked.

The kernel drops a ``flock`` when the process that holds it dies, however it dies (``kill -9``
included), so a crashed writer never leaves the store locked: its ``<store>.lock`` file stays behind,
unlocked, and the next writer simply takes it. A writer that ends normally removes the file
(:meth:`WriterLock.release`, called by ``EpisodeStore.close()``, or when the store is garbage-collected).
The lock file holds the writer's process id, for the error message only.

Within one process the lock is shared: opening a store for writing twice in one process (a store object
rebound to a reopened one, ``store = EpisodeStore.open(path, "a")``) does not fail, and the lock is
released when the last of them is closed. ``flock`` is per open file, so this process-wide table of held
locks is what makes that work; a child made with ``fork`` closes its inherited copies (it is another
process: it must take the lock itself). ``flock`` locks local filesystems; on NFS it may not exclude a
writer on another machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import threading
import weakref
from pathlib import Path

from gipo_robot.datasets.schema import DatasetError

LOCK_SUFFIX = ".lock"


@dataclasses.dataclass
class _Held:
    """A lock file this process holds: its descriptor, the holder's pid, how many WriterLocks share it."""

    fd: int
    pid: int
    users: int


_HELD: dict[str, _Held] = {}
"""Lock file path -> this process's hold on it (a flock belongs to an open file, so the process keeps one)."""
_HELD_GUARD = threading.Lock()


def lock_path(store: str | Path) -> Path:
    """The lock file of ``store``: ``<store>.lock`` beside it, symbolic links resolved (so two names of one
    store share it); the store need not exist."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(store))) + LOCK_SUFFIX)


class WriterLock:
    """This holder's share of the process's writer lock on one store; :meth:`release` (or leaving a
    ``with`` block) gives it back. Garbage collection releases it too, and the kernel does when the
    process dies.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._finalizer = weakref.finalize(self, _release, str(path))

    @property
    def held(self) -> bool:
        """Whether this share has not been released yet."""
        return self._finalizer.alive

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give the share back (idempotent); the process's last share unlocks and removes the lock file."""
        self._finalizer()


def acquire(store: str | Path) -> WriterLock:
    """Take the writer lock of ``store`` (shared with this process's other writers of it).

    The folder that will hold the store is created if missing (as creating the store would).

    Raises:
        DatasetError: another process holds it (naming its pid), or the lock file cannot be created or
            locked (a read-only folder, a filesystem without ``flock``).
    """
    path = lock_path(store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetError(
            f"cannot create the folder {path.parent}: {err.strerror or err}", path=store
        ) from err
    key = str(path)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held.pid == os.getpid():
            held.users += 1
        else:
            _HELD[key] = _Held(_lock_file(path, store), os.getpid(), 1)
    return WriterLock(path)


def _lock_file(path: Path, store: str | Path) -> int:
    """Open, lock and stamp ``path``; the descriptor holding the lock."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise DatasetError(
                f"cannot create the writer lock {path}: {err.strerror or err}", path=store
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DatasetError(
                f"is being written by process {holder}; a second writer would lose episodes, so wait for "
                f"it to finish or stop it (readers may open the store meanwhile; lock file {path})",
                path=store,
            ) from None
        except OSError as err:
            os.close(fd)
            raise DatasetError(f"cannot lock {path}: {err.strerror or err}", path=store) from err
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the previous holder removed the file between our open and our lock: take the new one


def _holder(fd: int) -> str:
    """The pid written in a lock file, or a description when it is not there (yet)."""
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return "(unknown pid)"


def _release(key: str) -> None:
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.users -= 1
        if held.users > 0:
            return
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(key)  # while still locked, so nobody can lock the file we are about to remove
        os.close(held.fd)


def _forget_in_child() -> None:
    """After ``fork``: close the inherited lock descriptors (the parent keeps its locks)."""
    global _HELD_GUARD
    _HELD_GUARD = threading.Lock()  # a thread of the parent may have held it at the fork
    for held in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)
