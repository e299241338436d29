"""Frames shared through a memory-mapped file: an emulator's rendered camera, read like a live camera.

Legend: ``H``/``W`` frame height/width in pixels.

An emulator (the virtual servo arm, :mod:`gipo_robot.hardware.emulators.arm_camera`) renders its MuJoCo
scene in its own process and publishes each frame with :class:`FramePublisher`; the robot side reads the
newest one with :class:`SharedFrameCamera`, which has :class:`~gipo_robot.hardware.cameras.OpenCVCamera`'s
interface (``connect``, ``read_latest``, ``read_new``, ``frames_grabbed``, ``name``, ``width``,
``height``), so :class:`~gipo_robot.hardware.with_cameras.RobotWithCameras` puts it on a robot as any
camera. In a robot config the source is ``"mujoco:<path>"``::

    [[cameras]]
    name = "front"
    source = "mujoco:/dev/shm/gipo-virtual-arm-x1y2/front.frames"
    width = 96
    height = 96

The file (``/dev/shm`` where it exists, so it stays in memory): a 64-byte header — magic ``GIPOFRM1``,
``uint32`` height and width, ``uint64`` sequence number, ``float64`` timestamp (``time.monotonic()`` when
the frame was rendered: one clock for every process of the machine), ``uint32`` closed flag — then the
(H, W, 3) uint8 RGB frame. Writes follow a sequence lock: the publisher makes the sequence odd, writes the
frame, then makes it even again; a reader that sees an odd or changed sequence reads again, so it never
returns a torn frame. Nothing is pickled: a reader trusts only the header's sizes, checked against the
configured ones.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

import numpy as np

from gipo_robot.hardware.cameras import CameraError, Frame

__all__ = ["SOURCE_PREFIX", "FramePublisher", "SharedFrameCamera", "frames_dir"]

#: A camera ``source`` starting with this is a frame file (the rest is its path).
SOURCE_PREFIX = "mujoco:"
MAGIC = b"GIPOFRM1"
_HEADER = struct.Struct("<8sIIQdI")  # magic, height, width, sequence, timestamp, closed
HEADER_BYTES = 64
_SEQ = struct.Struct("<Q")
_SEQ_AT = 16  # offset of the sequence number in the header


def frames_dir() -> Path:
    """Where emulators put their frame files: ``/dev/shm`` (memory) where it exists, else the temp dir."""
    import tempfile

    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class FramePublisher:
    """The writing end: creates ``path`` for (``height``, ``width``, 3) frames and publishes into it."""

    def __init__(self, path: str | Path, height: int, width: int) -> None:
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        size = HEADER_BYTES + self.height * self.width * 3
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._seq = 0
        self._map[:HEADER_BYTES] = _HEADER.pack(MAGIC, self.height, self.width, 0, 0.0, 0).ljust(HEADER_BYTES)
        self._pixels = np.frombuffer(self._map, np.uint8, self.height * self.width * 3, HEADER_BYTES)

    def publish(self, image: np.ndarray, timestamp: float | None = None) -> int:
        """Publish one (H, W, 3) uint8 frame stamped ``timestamp`` (default: now); returns its number."""
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"frame must be ({self.height}, {self.width}, 3) uint8, got {image.shape} {image.dtype}"
            )
        stamp = time.monotonic() if timestamp is None else float(timestamp)
        self._map[_SEQ_AT : _SEQ_AT + 8] = _SEQ.pack(2 * self._seq + 1)  # odd: being written
        self._pixels[:] = image.reshape(-1)
        self._map[_SEQ_AT + 8 : _SEQ_AT + 16] = struct.pack("<d", stamp)
        self._seq += 1
        self._map[_SEQ_AT : _SEQ_AT + 8] = _SEQ.pack(2 * self._seq)
        return self._seq

    def close(self, unlink: bool = True) -> None:
        """Mark the channel closed (readers raise :class:`CameraError`), then remove the file."""
        if self._map.closed:
            return
        self._map[_SEQ_AT + 16 : _SEQ_AT + 20] = struct.pack("<I", 1)
        del self._pixels
        self._map.close()
        if unlink:
            self.path.unlink(missing_ok=True)


class SharedFrameCamera:
    """The reading end, a camera: the newest frame a :class:`FramePublisher` published at ``path``.

    Args:
        path: the frame file (a camera source ``"mujoco:<path>"`` without its prefix).
        width: expected frame width in pixels (the publisher's must match).
        height: expected frame height.
        name: camera name, used in messages and as the ``<name>_image`` observation.
        poll_s: how often a read waiting for a new frame looks again, s.
    """

    def __init__(
        self, path: str | Path, width: int, height: int, *, name: str | None = None, poll_s: float = 0.002
    ):
        self.path = Path(path)
        self.source = f"{SOURCE_PREFIX}{path}"
        self.width, self.height = int(width), int(height)
        self.name = name or self.path.stem
        self.poll_s = poll_s
        self._map: mmap.mmap | None = None
        self._first_seq = 0
        self._last_seq = -1

    @property
    def is_connected(self) -> bool:
        return self._map is not None

    @property
    def frames_grabbed(self) -> int:
        """Frames published since :meth:`connect` (as far as this camera has looked)."""
        return max(0, self._last_seq - self._first_seq + 1)

    def connect(self) -> None:
        """Map the frame file and check its sizes.

        Raises:
            CameraError: no such file, not a frame file, or another frame size (naming the camera).
        """
        if self._map is not None:
            return
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise CameraError(
                f"camera {self.name!r}: cannot open frame file {self.path} ({err}); is the emulator "
                "that renders it running?"
            ) from None
        magic, height, width, seq, _, _ = _HEADER.unpack_from(self._map)
        if magic != MAGIC or len(self._map) != HEADER_BYTES + height * width * 3:
            self.disconnect()
            raise CameraError(f"camera {self.name!r}: {self.path} is not a frame file")
        if (height, width) != (self.height, self.width):
            self.disconnect()
            raise CameraError(
                f"camera {self.name!r}: the emulator renders {width}x{height} frames, the config asks for "
                f"{self.width}x{self.height}"
            )
        self._first_seq = max(seq // 2, 1)  # the frame shown now (or the first to come) is index 0
        self._last_seq = self._first_seq - 1

    def disconnect(self) -> None:
        """Unmap the file. Idempotent."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> SharedFrameCamera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def _snapshot(self) -> tuple[int, Frame | None]:
        """(sequence, frame) of a consistent read; frame None when nothing is published yet."""
        m = self._map
        if m is None:
            raise CameraError(f"camera {self.name!r}: read before connect()")
        for _ in range(100):
            _, height, width, seq, stamp, closed = _HEADER.unpack_from(m)
            if closed:
                raise CameraError(f"camera {self.name!r}: the emulator publishing {self.path} stopped")
            if seq % 2:
                continue  # being written
            image = (
                np.frombuffer(m, np.uint8, height * width * 3, HEADER_BYTES).reshape(height, width, 3).copy()
            )
            if _SEQ.unpack_from(m, _SEQ_AT)[0] == seq:
                n = seq // 2
                self._last_seq = max(self._last_seq, n)
                return n, (Frame(image, stamp, n - self._first_seq) if n > 0 else None)
        raise CameraError(
            f"camera {self.name!r}: no consistent frame in {self.path} (a writer that never stops)"
        )

    def _wait(self, ok, timeout: float, why: str) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            _, frame = self._snapshot()
            if frame is not None and ok(frame):
                return frame
            if time.monotonic() >= deadline:
                raise CameraError(f"camera {self.name!r}: {why} within {timeout} s from {self.path}")
            time.sleep(self.poll_s)

    def read_latest(self, timeout: float = 2.0) -> Frame:
        """The newest published frame; waits up to ``timeout`` s only if none was published yet."""
        return self._wait(lambda frame: True, timeout, "no frame")

    def read_new(self, after: int, timeout: float = 2.0) -> Frame:
        """The newest frame with ``index > after`` (waits for it): never the same frame twice."""
        return self._wait(lambda frame: frame.index > after, timeout, f"no frame newer than {after}")
