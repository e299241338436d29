"""Datasets of other formats: tell a path's format, open it read-only where it reads in place, convert it.

:data:`IMPORTERS` maps a format name to an :class:`Importer`, three ``"module:function"`` strings that are
imported only when used (a module path starting with ``.`` is relative to ``gipo_robot.datasets``), so an
optional extra such as ``lerobot`` is needed only by its own format and the store never imports an
adapter. One new importer = one registration line: its entry in :data:`IMPORTERS`.

:func:`detect_format` asks each importer's detector in the order of :data:`IMPORTERS` (the first that
claims the path wins), then whether the path is an episode store (:data:`EPISODE_STORE`);
:func:`import_dataset` converts a dataset into a new episode store; :func:`open_dataset` opens an episode
store, or a dataset that reads in place (a Diffusion Policy replay buffer) as a read-only store.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zarr

from gipo_robot.datasets.chunkfiles import fsync_paths
from gipo_robot.datasets.layout import FORMAT_NAME, recover_interrupted_swap, swap_paths
from gipo_robot.datasets.lock import acquire
from gipo_robot.datasets.schema import ALREADY_EXISTS, DatasetError
from gipo_robot.datasets.store import EpisodeStore

EPISODE_STORE = "episode_store"
"""The format name :func:`detect_format` gives our own Zarr episode store."""


@dataclass(frozen=True)
class Importer:
    """How to recognise and convert one dataset format; each field is a ``"module:function"`` string.

    Attributes:
        detect: ``(path) -> bool``, whether ``path`` holds a dataset of this format; never raises.
        convert: ``(src, dst, *, overwrite) -> EpisodeStore``, write the dataset as a new store at ``dst``.
        open: ``(path, mode) -> EpisodeStore``, a read-only store view of the dataset in place, for formats
            that can be read without converting (``None``: convert first).
    """

    detect: str
    convert: str
    open: str | None = None


IMPORTERS: dict[str, Importer] = {
    "lerobot": Importer(".from_lerobot:is_lerobot_dataset", ".from_lerobot:lerobot_to_store"),
    "robomimic": Importer(".from_robomimic:is_robomimic_file", ".from_robomimic:robomimic_to_store"),
    "diffusion_policy": Importer(
        ".from_diffusion_policy:is_replay_buffer",
        ".from_diffusion_policy:replay_buffer_to_store",
        ".from_diffusion_policy:open_replay_buffer",
    ),
}
"""Format name -> :class:`Importer`, in detection order (LeRobot folders before suffix-named files)."""


def _resolve(spec: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` string names, importing its module now."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module, __package__), name)


def known_formats() -> list[str]:
    """Every format :func:`detect_format` can answer: the registered importers, then the episode store."""
    return [*IMPORTERS, EPISODE_STORE]


def is_episode_store(path: str | Path) -> bool:
    """Whether ``path`` (a local folder or a Zarr store URL) is a Zarr group with our format attribute."""
    if "://" not in str(path) and not Path(path).is_dir():
        return False
    with contextlib.suppress(Exception):
        return zarr.open_group(str(path), mode="r").attrs.get("format") == FORMAT_NAME
    return False


def detect_format(path: str | Path) -> str:
    """The format of the dataset at ``path``: a key of :data:`IMPORTERS` or :data:`EPISODE_STORE`.

    Raises:
        DatasetError: no format claims the path (naming it and the known formats).
    """
    for name, importer in IMPORTERS.items():
        if _resolve(importer.detect)(path):
            return name
    if is_episode_store(path):
        return EPISODE_STORE
    missing = "://" not in str(path) and not Path(path).exists()
    reason = "no such file or folder" if missing else "not a dataset of a known format"
    raise DatasetError(f"{reason} (known formats: {', '.join(known_formats())})", path=path)


def reads_in_place(fmt: str) -> bool:
    """Whether datasets of format ``fmt`` open as a store without converting (see :func:`open_dataset`).

    Raises:
        DatasetError: ``fmt`` is not a known format.
    """
    if fmt == EPISODE_STORE:
        return True
    return _importer(fmt).open is not None


def _importer(fmt: str) -> Importer:
    if fmt not in IMPORTERS:
        raise DatasetError(f"unknown dataset format {fmt!r}; known: {', '.join(known_formats())}")
    return IMPORTERS[fmt]


def import_dataset(
    src: str | Path, dst: str | Path, *, fmt: str | None = None, overwrite: bool = False, **options: Any
) -> EpisodeStore:
    """Convert the dataset at ``src`` into a new episode store at ``dst``, all or nothing.

    The store is written to ``<dst>.rewrite`` beside ``dst`` and renamed into place when complete (an
    existing ``dst`` is replaced with the same two renames as ``drop_episode``: ``dst`` ->
    ``<dst>.replaced``, ``<dst>.rewrite`` -> ``dst``, which :meth:`EpisodeStore.open` finishes if a kill
    interrupts them). A conversion that fails leaves ``dst`` as it was; one killed leaves a
    ``<dst>.rewrite`` that the next conversion to ``dst`` removes. ``dst``'s writer lock is held
    throughout, so a store another process is writing is never replaced.

    Args:
        src: the dataset (file, folder or URL, as its format takes it).
        dst: the store folder to create.
        fmt: its format, a key of :data:`IMPORTERS` (``None``: :func:`detect_format`).
        overwrite: replace an existing store at ``dst``.
        options: passed to the format's converter (e.g. ``robot_spec`` for ``lerobot``).

    Raises:
        DatasetError: the format is unknown, ``src`` is already an episode store, ``dst`` exists (without
            ``overwrite``) or is being written by another process, or the conversion fails (naming the
            file, feature and episode).
    """
    fmt = detect_format(src) if fmt is None else fmt
    if fmt == EPISODE_STORE:
        raise DatasetError("already an episode store; nothing to import", path=src)
    convert = _resolve(_importer(fmt).convert)
    target = Path(dst)
    tmp, old = swap_paths(target)
    with acquire(target):
        recover_interrupted_swap(target, repair=True)
        if target.exists() and not overwrite:
            raise DatasetError(ALREADY_EXISTS, path=dst)
        _remove(tmp)  # left by a conversion or drop_episode that was killed (none is running: we lock)
        try:
            convert(src, tmp, overwrite=False, **options).close()
        except BaseException as err:
            _remove(tmp)
            if isinstance(err, DatasetError):  # name the store asked for, not the temporary folder
                err.args = (str(err).replace(str(tmp), str(dst)),)
                err.path = str(dst) if err.path == str(tmp) else err.path
            raise
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        fsync_paths([str(target / "zarr.json")], str(target.parent))
        _remove(old)
        return EpisodeStore.open(target, "a")


def _remove(path: Path) -> None:
    """Delete a folder or file if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def open_dataset(path: str | Path, mode: str = "r") -> EpisodeStore:
    """Open an episode store, or a dataset of a format that reads in place as a read-only store.

    Args:
        path: local folder or any Zarr store URL.
        mode: ``"r"`` read-only or ``"a"`` read and append (episode stores only).

    Raises:
        DatasetError: as :meth:`EpisodeStore.open`; or the dataset is of a format that must be converted
            first, or reads only in place and ``mode`` is ``"a"``.
    """
    for name, importer in IMPORTERS.items():
        if _resolve(importer.detect)(path):
            if importer.open is None:
                raise DatasetError(
                    f"a {name} dataset does not open as an episode store; convert it first "
                    f"(gipo-robot convert {path} OUT.zarr)",
                    path=path,
                )
            return _resolve(importer.open)(path, mode)
    return EpisodeStore.open(path, mode)
