"""OpenCV cameras with a background grab thread: the control loop reads the newest frame without waiting.

Legend: ``H``/``W`` frame height/width in pixels.

A camera that is only read when the loop needs a frame hands out a stale one from the driver's buffer and
makes the loop wait for the next exposure. :class:`OpenCVCamera` grabs continuously in its own thread and
keeps only the latest frame, stamped with ``time.monotonic()`` when it was grabbed and numbered, so the
loop can tell a fresh frame from one it already saw and how old it is.

Sources: a device index (``0`` for ``/dev/video0``), a device path (``/dev/video2``), a video file (played
at its own frame rate, like a live camera; ``loop=True`` starts over at the end) or a stream URL
(``rtsp://...``, ``http://...``). Frames are RGB uint8 (H, W, 3), the layout the simulator's
``<camera>_image`` observations use. To put cameras on a robot, list them in its config
(:mod:`gipo_robot.hardware.with_cameras`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np

from gipo_robot.hardware.robot import RobotError

__all__ = ["CameraError", "Frame", "OpenCVCamera"]


class CameraError(RobotError):
    """A camera that cannot be opened, stopped delivering frames, or was read before it started; the
    message names the camera."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One grabbed frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        timestamp: ``time.monotonic()`` when the frame was grabbed, s.
        index: frames grabbed before this one since :meth:`OpenCVCamera.connect` (0 for the first).
    """

    image: np.ndarray
    timestamp: float
    index: int


class OpenCVCamera:
    """A ``cv2.VideoCapture`` source read by a background thread.

    Args:
        source: device index, device path, video file path or stream URL.
        width: frame width in pixels; asked of the device and, if it delivers another size, resized to.
            None keeps the source's.
        height: frame height in pixels (as ``width``).
        fps: frame rate asked of a device; for a file, the playback rate (default: the file's own).
        loop: for a video file, start over at its end instead of stopping.
        max_failures: consecutive failed reads after which a device or stream counts as lost.
        name: name used in messages and as the ``<name>_image`` observation; default ``str(source)``.

    Use as a context manager (``with OpenCVCamera(0) as cam: cam.read_latest()``) or call
    :meth:`connect` / :meth:`disconnect`.
    """

    def __init__(
        self,
        source: int | str,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        loop: bool = False,
        max_failures: int = 30,
        name: str | None = None,
    ) -> None:
        for field, value in (("width", width), ("height", height)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"OpenCVCamera.{field} must be a positive int, got {value!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"OpenCVCamera.fps must be > 0, got {fps!r}")
        if (width is None) != (height is None):
            raise ValueError("OpenCVCamera.width and height must be given together")
        self.source = source
        self.width, self.height, self.fps = width, height, fps
        self.loop = loop
        self.max_failures = max_failures
        self.name = name or str(source)
        self.is_file = isinstance(source, str) and Path(source).is_file()
        self._cap = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._count = 0
        self._error: str | None = None
        self._ended = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_connected(self) -> bool:
        """Whether the grab thread is running."""
        return self._thread is not None

    def connect(self) -> None:
        """Open the source and start the grab thread.

        Raises:
            CameraError: the source cannot be opened (naming it).
        """
        if self.is_connected:
            return
        import cv2

        if isinstance(self.source, str) and "://" not in self.source and not Path(self.source).exists():
            raise CameraError(f"camera {self.name!r}: no such file or device {self.source!r} (and not a URL)")
        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.name!r}: OpenCV cannot open source {self.source!r}")
        if not self.is_file:
            if self.width is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps is not None:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap
        self._stop.clear()
        self._latest, self._count, self._error, self._ended = None, 0, None, False
        self._thread = threading.Thread(target=self._grab_loop, name=f"camera:{self.name}", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        """Stop the grab thread and release the source. Idempotent."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> OpenCVCamera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ reading

    @property
    def frames_grabbed(self) -> int:
        """Frames grabbed since :meth:`connect`."""
        return self._count

    @property
    def ended(self) -> bool:
        """A video file (without ``loop``) played to its end; :meth:`read_latest` keeps its last frame."""
        return self._ended

    def read_latest(self, timeout: float = 2.0) -> Frame:
        """The newest frame; waits up to ``timeout`` s only if none has arrived since connect.

        Raises:
            CameraError: not connected, the device or stream was lost, or no frame within ``timeout``.
        """
        if not self.is_connected:
            raise CameraError(f"camera {self.name!r}: read before connect()")
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._error is not None, timeout)
            if self._error is not None:
                raise CameraError(self._error)
            if self._latest is None:
                raise CameraError(f"camera {self.name!r}: no frame within {timeout} s from {self.source!r}")
            return self._latest

    def read_new(self, after: int, timeout: float = 2.0) -> Frame:
        """The newest frame with ``index > after`` (waits for it): never the same frame twice.

        Raises:
            CameraError: as :meth:`read_latest`, or the file ended before a newer frame.
        """
        self.read_latest(timeout)

        def done() -> bool:
            return (
                self._latest.index > after or self._error is not None or self._ended or not self.is_connected
            )

        with self._cond:
            self._cond.wait_for(done, timeout)
            if self._error is not None:
                raise CameraError(self._error)
            if self._latest.index <= after:
                why = "the video ended" if self._ended else f"none within {timeout} s"
                raise CameraError(f"camera {self.name!r}: no frame newer than {after}: {why}")
            return self._latest

    # ------------------------------------------------------------------ grab thread

    def _frame_period(self) -> float:
        """Seconds between frames when playing a file; 0 (no pacing) for live sources."""
        if not self.is_file:
            return 0.0
        import cv2

        fps = self.fps or self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        return 1.0 / fps

    def _grab_loop(self) -> None:
        import cv2

        period = self._frame_period()
        failures = 0
        next_time = time.monotonic()
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if not ok:
                if self.is_file:
                    if self.loop and self._count > 0:
                        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    with self._cond:
                        self._ended = True
                        self._cond.notify_all()
                    return
                failures += 1
                if failures >= self.max_failures:
                    with self._cond:
                        self._error = (
                            f"camera {self.name!r}: source {self.source!r} stopped delivering frames "
                            f"({failures} failed reads in a row)"
                        )
                        self._cond.notify_all()
                    return
                self._stop.wait(0.01)
                continue
            failures = 0
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if self.width is not None and rgb.shape[:2] != (self.height, self.width):
                rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
            with self._cond:
                self._latest = Frame(rgb, now, self._count)
                self._count += 1
                self._cond.notify_all()
            if period:
                next_time += period
                delay = next_time - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_time = time.monotonic()  # behind (slow decode): do not burst to catch up
