"""Direct reads of a local Zarr v3 array's chunk files, for fast random minibatches.

zarr-python costs about 0.3 ms per chunk on a 2-core machine whatever the codec (asyncio scheduling,
buffer and codec-pipeline objects), and an image feature stores one frame per chunk, so a random
minibatch of 256 frames spent ~70 ms in zarr for ~4 ms of file reads and the decoding itself.
:class:`ChunkReader` reads the same chunk files the way zarr would, without that machinery: it takes
the chunk key encoding, chunk shape, fill value and codec pipeline from the array's own metadata,
reads ``<array>/<chunk key>`` with one ``open().read()``, checks the CRC32C where the pipeline has one,
undoes Blosc/Zstd, and decodes image frames in a thread pool (file reads and ``imagecodecs``/Blosc
release the GIL). A missing chunk file reads as the fill value, as in zarr, unless the reader is built
with ``lost_is_error`` (a store whose every chunk is written: a missing file is a lost one), when it
raises :class:`LostChunkError`.

It only handles what it fully understands: a zarr v3 array in a local folder, a regular chunk grid
with one chunk across every trailing dimension, no array->array filters, an array->bytes codec that is
:class:`~gipo_robot.datasets.codecs.ImageCodec` or a little-endian (or 1-byte) ``bytes`` codec, and
bytes->bytes codecs among Blosc, Zstd and CRC32C. :meth:`ChunkReader.for_array` returns ``None`` for
anything else (sharding, gzip, remote stores, ...), and the caller reads through zarr. The values
are byte-identical to zarr's (``tests/datasets/test_chunks.py``).

Decoded chunks of multi-row (low-dim) arrays are kept in a small LRU cache, so the ~80 chunks that
hold a 40 000-step, 32-d float32 feature are decoded once, not once per minibatch. The cache holds
committed and uncommitted rows alike; the store clears it whenever it writes or re-reads the store.

Legend: ``R`` rows per chunk, ``N`` rows read.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import google_crc32c
import numcodecs.blosc
import numcodecs.zstd
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec
from zarr.storage import LocalStore

from gipo_robot.datasets.codecs import ImageCodec, decode_frame

CACHE_BYTES = 64 * 1024 * 1024
"""Decoded low-dim chunks kept per array (least recently used evicted first)."""
PARALLEL_CHUNKS = 16
"""Chunks decoded per thread-pool task; reads needing fewer are decoded in the calling thread."""


ChunkBytes = bytes | np.ndarray
"""Chunk bytes as read from the file, or a uint8 view of them."""


class ChecksumError(ValueError):
    """A chunk's stored CRC32C disagrees with its bytes."""


class LostChunkError(FileNotFoundError):
    """A chunk file that must exist (its store writes every chunk) is missing."""


class ChunkReader:
    """Reads rows of one local zarr v3 array straight from its chunk files.

    Build it with :meth:`for_array`. Rows are counted along the first axis; every chunk spans the whole
    trailing shape, so a chunk is ``R`` consecutive rows.
    """

    def __init__(
        self,
        folder: str,
        key: Callable[[int], str],
        chunk_shape: tuple[int, ...],
        dtype: np.dtype,
        fill_value: object,
        decoders: Sequence[Callable[[ChunkBytes], ChunkBytes]],
        final: Callable[[ChunkBytes], np.ndarray],
        lost_is_error: bool = False,
    ) -> None:
        self.folder = folder
        self.lost_is_error = lost_is_error
        self._key = key
        self.chunk_shape = chunk_shape
        self.rows_per_chunk = chunk_shape[0]
        self.dtype = dtype
        self._fill = np.full(chunk_shape, fill_value, dtype)
        self._fill.setflags(write=False)
        self._decoders = tuple(decoders)
        self._final = final
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()
        self.cached = self.rows_per_chunk > 1

    @classmethod
    def for_array(cls, array: zarr.Array, *, lost_is_error: bool = False) -> ChunkReader | None:
        """A reader for ``array``, or ``None`` when its storage or codecs are not ones this module handles.

        Args:
            array: a local zarr v3 array.
            lost_is_error: raise :class:`LostChunkError` for a missing chunk file, instead of reading it as
                the fill value.
        """
        store = array.store_path.store
        meta = array.metadata
        if not isinstance(store, LocalStore) or meta.zarr_format != 3 or array.ndim == 0:
            return None
        chunk_shape = tuple(int(c) for c in array.chunks)
        if chunk_shape[1:] != tuple(array.shape[1:]):
            return None  # several chunks across a trailing dimension
        dtype = np.dtype(array.dtype)
        if dtype.kind not in "biuf":
            return None
        codecs = list(meta.codecs)
        if not codecs:
            return None
        first, rest = codecs[0], codecs[1:]
        if isinstance(first, ImageCodec):
            fmt = first.format

            def final(data: ChunkBytes) -> np.ndarray:
                return np.asarray(decode_frame(data, fmt), dtype=np.uint8).reshape(chunk_shape)

        elif isinstance(first, BytesCodec):
            endian = getattr(first.endian, "value", first.endian)  # an Endian enum in zarr 3.1, a str in 3.4
            if dtype.itemsize > 1 and endian != "little":
                return None
            wire = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype

            def final(data: ChunkBytes) -> np.ndarray:
                return np.frombuffer(data, dtype=wire).reshape(chunk_shape).astype(dtype, copy=False)

        else:
            return None  # sharding, a filter before the serializer, or an unknown serializer
        decoders: list[Callable[[ChunkBytes], ChunkBytes]] = []
        for codec in reversed(rest):
            if isinstance(codec, Crc32cCodec):
                decoders.append(_check_crc32c)
            elif isinstance(codec, BloscCodec):
                decoders.append(numcodecs.blosc.decompress)
            elif isinstance(codec, ZstdCodec):
                decoders.append(numcodecs.zstd.decompress)
            else:
                return None
        folder = os.path.join(str(store.root), array.store_path.path)
        trailing = (0,) * (array.ndim - 1)

        def key(chunk: int) -> str:
            return meta.encode_chunk_key((chunk, *trailing))

        return cls(folder, key, chunk_shape, dtype, meta.fill_value, decoders, final, lost_is_error)

    # ------------------------------------------------------------------ one chunk

    def _decode(self, chunk: int) -> np.ndarray:
        """Chunk ``chunk`` as an array of :attr:`chunk_shape` (the fill value where there is no file).

        Raises:
            ChecksumError: the stored CRC32C disagrees with the bytes.
            LostChunkError: no file, and the reader was built with ``lost_is_error``.
            ValueError, RuntimeError, OSError: the file is unreadable or its bytes do not decode.
        """
        try:
            with open(os.path.join(self.folder, self._key(chunk)), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if self.lost_is_error:
                raise LostChunkError(
                    f"chunk file {self._key(chunk)} (rows {chunk * self.rows_per_chunk}.."
                    f"{(chunk + 1) * self.rows_per_chunk - 1}) is lost"
                ) from None
            return self._fill
        for decode in self._decoders:
            data = decode(data)
        return self._final(data)

    def _chunk(self, chunk: int) -> np.ndarray:
        if not self.cached:
            return self._decode(chunk)
        with self._lock:
            hit = self._cache.get(chunk)
            if hit is not None:
                self._cache.move_to_end(chunk)
                return hit
        value = self._decode(chunk)
        with self._lock:
            if chunk not in self._cache:
                self._cache[chunk] = value
                self._cache_bytes += value.nbytes
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.nbytes
        return value

    def clear_cache(self) -> None:
        """Forget every decoded chunk (after a write, or when the store may have changed on disk)."""
        with self._lock:
            self._cache.clear()
            self._cache_bytes = 0

    # ------------------------------------------------------------------ many rows

    def read(self, rows: np.ndarray, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
        """Rows ``rows`` ``(N,)`` (sorted ascending, no repeats, inside the array): ``(N, *shape)``.

        Args:
            rows: row numbers along the first axis.
            pool: threads to decode chunks with, :data:`PARALLEL_CHUNKS` per task, when at least twice
                that many are not cached (``None``: decode in the calling thread).
        """
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, *self.chunk_shape[1:]), self.dtype)
        if not rows.size:
            return out
        r = self.rows_per_chunk
        chunk_of_row = rows // r
        chunks, first = np.unique(chunk_of_row, return_index=True)
        bounds = np.append(first, rows.size)

        def fill(ks: range) -> None:
            for k in ks:
                lo, hi = bounds[k], bounds[k + 1]
                values = self._chunk(int(chunks[k]))
                if r == 1:
                    out[lo] = values[0]
                else:
                    out[lo:hi] = values[rows[lo:hi] - chunks[k] * r]

        if self.cached:
            with self._lock:
                misses = sum(int(c) not in self._cache for c in chunks)
        else:
            misses = chunks.size
        if pool is None or misses < 2 * PARALLEL_CHUNKS:
            fill(range(chunks.size))
        else:
            tasks = [
                range(k, min(k + PARALLEL_CHUNKS, chunks.size))
                for k in range(0, chunks.size, PARALLEL_CHUNKS)
            ]
            futures = [pool.submit(fill, ks) for ks in tasks]
            wait(futures)  # every task done (or failed) before an error surfaces
            for future in futures:
                future.result()
        return out


def _check_crc32c(data: ChunkBytes) -> ChunkBytes:
    """Strip and check the 4-byte little-endian CRC32C that zarr's ``crc32c`` codec appends."""
    if len(data) < 4:
        raise ChecksumError(f"chunk of {len(data)} bytes is too short to hold its CRC32C")
    body = np.frombuffer(data, dtype=np.uint8)[:-4]
    stored = int.from_bytes(bytes(data[-4:]), "little")
    computed = google_crc32c.value(body)
    if computed != stored:
        raise ChecksumError(
            f"stored and computed CRC32C checksums differ ({stored:#010x} != {computed:#010x})"
        )
    return body
