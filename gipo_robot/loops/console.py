"""What the operator of a recording session sees, and how they stop it: the live status line and the
Ctrl-C/SIGTERM handlers.

Both are terminal plumbing of :func:`gipo_robot.loops.record.record`, kept apart from its control loop.
The status line is the only thing that writes to the terminal while a session runs: warnings the package
logs meanwhile (the safety guard's watchdog or e-stop, from its own thread) come through
:meth:`StatusLine.logs` as lines above it, never written into it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = ["StatusLine", "StopSignals"]


class StatusLine:
    """The live status line on stderr (rewritten in place on a terminal, else printed every ~5 s).

    Safe to call from several threads (the loop's, a logging thread's).

    Args:
        out: where the line goes.
        enabled: False prints nothing.
    """

    def __init__(self, out: IO[str], *, enabled: bool) -> None:
        self.out = out
        self.enabled = enabled
        self.tty = enabled and hasattr(out, "isatty") and out.isatty()
        self._last = 0.0
        self._times: list[float] = []
        self._width = 0
        self._lock = threading.Lock()

    def update(self, describe: Callable[[float], str]) -> None:
        """Called once per loop iteration; every 0.25 s (terminal) or 5 s (log) shows ``describe(rate)``,
        where ``rate`` is the loop's measured rate over the last second, Hz."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self._times = [t for t in (*self._times, now) if now - t <= 1.0]
        if now - self._last < (0.25 if self.tty else 5.0):
            return
        self._last = now
        rate = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else 0.0
        line = describe(rate)
        with self._lock:
            if self.tty:
                self.out.write("\r" + line.ljust(self._width))
                self._width = len(line)
            else:
                self.out.write(line + "\n")
            self.out.flush()

    def note(self, message: str) -> None:
        """A line that stays (episode saved, key map), printed above the status line."""
        if not self.enabled or not message:
            return
        with self._lock:
            if self.tty and self._width:
                self.out.write("\r" + " " * self._width + "\r")
                self._width = 0
            self.out.write(message + "\n")
            self.out.flush()

    def close(self) -> None:
        with self._lock:
            if self.tty and self._width:
                self.out.write("\r\n")
                self.out.flush()
                self._width = 0

    @contextlib.contextmanager
    def logs(self, name: str = "gipo_robot") -> Iterator[None]:
        """Inside the block, warnings logged under the logger ``name`` (and its children) are printed as
        notes, and only there: not also by the root logger's handlers or Python's last-resort one, which
        would write them into the middle of the status line. Does nothing when the line is disabled."""
        if not self.enabled:
            yield
            return
        logger = logging.getLogger(name)
        handler = _NoteHandler(self)
        propagate = logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


class _NoteHandler(logging.Handler):
    """Log records of WARNING and above -> :meth:`StatusLine.note`."""

    def __init__(self, status: StatusLine) -> None:
        super().__init__(logging.WARNING)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.status.note(record.getMessage())
        except Exception:  # a logging handler must not raise into the code that logged
            self.handleError(record)


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM end the session like ``quit`` minus saving: the arm holds, the unsaved
    episode is dropped, the terminal is restored. The handlers only set :attr:`signal`, and the loop checks
    it between steps: an exception raised from a handler can land inside robosuite's numba controller,
    which turns it into a ``SystemError`` instead of a clean stop. A second signal before the loop has
    seen the first raises ``KeyboardInterrupt`` at once (a way out of a loop stuck in a device read).
    Main thread only (a Python rule for signal handlers); elsewhere nothing is installed."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
