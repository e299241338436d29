"""The chunk files that hold given rows of a local Zarr array: which ones a store must have, and flushing
them to disk.

The store writes with zarr, which replaces each chunk file atomically (a temporary file renamed over it)
but never calls ``fsync``. This module names the files behind rows ``start:stop`` of an array (the chunk
files, or shard files for a sharded array, with the chunk key encoding of the array's own metadata), so
the store can ``fsync`` exactly the files a commit wrote (:func:`fsync_paths`) and
:func:`missing_chunks` can tell which files of the committed rows are gone.

Legend: ``R`` rows per chunk (along the first axis).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import zarr
from zarr.storage import LocalStore

FSYNC_THREADS = 8
"""Files flushed at once (``fsync`` waits on the disk, not the CPU; the filesystem batches them)."""


def local_folder(array: zarr.Array) -> str | None:
    """The folder of ``array`` on local disk, or ``None`` for any other store."""
    store = array.store_path.store
    if not isinstance(store, LocalStore):
        return None
    return os.path.join(str(store.root), array.store_path.path)


def _grid(array: zarr.Array) -> tuple[int, ...]:
    """The shape of one stored object: the shard shape of a sharded array, else the chunk shape."""
    shards = getattr(array, "shards", None)
    return tuple(int(c) for c in (shards or array.chunks))


def chunk_keys(array: zarr.Array, start: int, stop: int) -> list[tuple[str, int, int]]:
    """The stored objects holding rows ``start:stop`` (every trailing index), in row order.

    Returns:
        ``(key, first_row, end_row)`` per chunk file (per shard file of a sharded array): the key relative
        to the array's folder (``c.3.0``, ``c/3/0``, or ``3.0`` in Zarr v2) and the rows it holds.
    """
    if stop <= start:
        return []
    grid = _grid(array)
    rows = grid[0]
    trailing = [range(math.ceil(int(n) / c)) for n, c in zip(array.shape[1:], grid[1:], strict=True)]
    out = []
    for chunk in range(start // rows, (stop - 1) // rows + 1):
        for rest in itertools.product(*trailing):
            key = array.metadata.encode_chunk_key((chunk, *rest))
            out.append((key, chunk * rows, (chunk + 1) * rows))
    return out


def missing_chunks(array: zarr.Array, rows: int) -> list[tuple[str, int, int]] | None:
    """The chunk files of rows ``0:rows`` that do not exist (``None``: not a local array, not checked).

    Returns:
        ``(key, first_row, end_row)`` of each missing file, as :func:`chunk_keys` gives them.
    """
    folder = local_folder(array)
    if folder is None:
        return None
    present = set()
    for parent, _, files in os.walk(folder):
        relative = os.path.relpath(parent, folder)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        present.update(prefix + name for name in files)
    return [entry for entry in chunk_keys(array, 0, rows) if entry[0] not in present]


def row_files(array: zarr.Array, start: int, stop: int) -> list[str]:
    """Paths of the chunk files of rows ``start:stop`` and of the array's ``zarr.json`` (its shape), for
    :func:`fsync_paths`; empty for an array that is not on local disk."""
    folder = local_folder(array)
    if folder is None:
        return []
    files = [os.path.join(folder, key) for key, _, _ in chunk_keys(array, start, stop)]
    return [*files, os.path.join(folder, "zarr.json")]


def fsync_paths(files: Iterable[str], root: str) -> None:
    """Flush ``files`` to disk, then every folder from each file's up to ``root``, so both the contents
    and the renames that put them in place survive a power cut.

    A file that does not exist is skipped (zarr writes no file for a chunk of fill values in stores
    written before :data:`~gipo_robot.datasets.layout.EVERY_CHUNK_WRITTEN`).

    Raises:
        OSError: the disk reported a write error (``EIO``, ``ENOSPC``): the data is not safe.
    """
    files = list(dict.fromkeys(files))
    root = os.path.abspath(root)
    folders: dict[str, None] = {}
    for path in files:
        parent = os.path.dirname(os.path.abspath(path))
        while (parent == root or parent.startswith(root + os.sep)) and parent not in folders:
            folders[parent] = None
            if parent == root:
                break
            parent = os.path.dirname(parent)
    if len(files) > FSYNC_THREADS:
        with ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="gipo-store-fsync") as pool:
            list(pool.map(_fsync, files))
    else:
        for path in files:
            _fsync(path)
    for folder in sorted(folders, key=len, reverse=True):
        _fsync(folder, directory=True)


def _fsync(path: str, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """Flush every file and folder under ``root`` (a store just created), and ``root``'s own entry."""
    root = os.path.abspath(root)
    files = [os.path.join(parent, name) for parent, _, names in os.walk(root) for name in names]
    fsync_paths(files, root)
    _fsync(os.path.dirname(root), directory=True)


def first_missing(array: zarr.Array, start: int, stop: int) -> tuple[str, int, int] | None:
    """The first chunk file of rows ``start:stop`` that does not exist, as :func:`chunk_keys` names it;
    ``None`` when all exist or the array is not on local disk (one ``stat`` per chunk)."""
    folder = local_folder(array)
    if folder is None:
        return None
    for entry in chunk_keys(array, start, stop):
        if not os.path.exists(os.path.join(folder, entry[0])):
            return entry
    return None
