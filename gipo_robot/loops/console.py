"""What the operator of a recording session sees, and how they stop it: the live status line and the
Ctrl-C/SIGTERM handlers.

Both are terminal plumbing of :func:`gipo_robot.loops.record.record`, kept apart from its control loop.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["StatusLine", "StopSignals"]


class StatusLine:
    """The live status line on stderr (rewritten in place on a terminal, else printed every ~5 s).

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
        if self.tty:
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        """A line that stays (episode saved, key map)."""
        if not self.enabled or not message:
            return
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.write(message + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.out.write("\r\n")
            self.out.flush()


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
