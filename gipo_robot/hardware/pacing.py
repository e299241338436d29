"""Fixed-rate loops: one :class:`Pacer` for every paced loop (deploy, teleop recording, benchmarks).

Legend: ``T`` the period in s; tick ``k`` is due at ``t0 + k*T``.

The pacer keeps absolute deadlines, so errors do not accumulate. It sleeps until ``spin_s`` before a
deadline and busy-waits the rest (``time.sleep`` alone oversleeps by up to a scheduler quantum). Per tick
it records the *period error* ``|(t_k - t_{k-1}) - T|``, the wake-to-wake interval's distance from the
nominal period, and the *work* time (from a tick to the next :meth:`Pacer.wait`). A step whose work runs
past the next deadline *missed* it: the next tick then starts at once and the schedule re-anchors there
rather than bursting to catch up, so an overrun shows as one long period, never as a run of short ones.

:func:`realtime_priority` runs the loop's thread under ``SCHED_FIFO`` where the OS allows it: under
default scheduling on a busy machine a loop is preempted at random (``benchmarks/control_loop.json``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["Pacer", "format_ms", "realtime_priority", "timing_summary"]

log = logging.getLogger(__name__)


def timing_summary(period_errors_s: list[float], work_s: list[float], missed: int, period: float) -> dict:
    """JSON-ready timing statistics of a paced loop, in ms.

    Args:
        period_errors_s: per tick ``|(t_k - t_{k-1}) - T|``, s.
        work_s: per step, the time from its tick to the next wait, s.
        missed: steps whose work overran the next tick.
        period: T, s.
    """
    errors = np.asarray(period_errors_s, dtype=np.float64) * 1e3
    work = np.asarray(work_s, dtype=np.float64) * 1e3

    def q(x: np.ndarray, p: float) -> float | None:
        return float(np.percentile(x, p)) if x.size else None

    return {
        "period_ms": period * 1e3,
        "ticks": int(errors.size + (1 if work.size else 0)),
        "p50_period_error_ms": q(errors, 50),
        "p99_period_error_ms": q(errors, 99),
        "max_period_error_ms": float(errors.max()) if errors.size else None,
        "missed": int(missed),
        "p50_work_ms": q(work, 50),
        "p99_work_ms": q(work, 99),
    }


def format_ms(value: float | None) -> str:
    """A duration in ms for people, to a useful precision: ``0.04 ms``, ``3.9 ms``, ``442 ms`` (``n/a`` for
    None). Human-facing lines only: JSON output keeps full precision."""
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


class Pacer:
    """Absolute-deadline pacing of a loop at period ``period`` s (see the module docstring).

    Usage::

        pacer = Pacer(robot.spec.period)
        pacer.start()
        for _ in range(n):
            pacer.wait()      # returns at the tick (pacer.last_tick)
            ...               # observe, act

    Args:
        period: T, s.
        spin_s: busy-wait this long before each tick instead of sleeping, s (0 with a fake clock).
        clock: monotonic time in s (tests pass fakes).
        sleep: sleep function (tests pass fakes).
    """

    def __init__(
        self,
        period: float,
        spin_s: float = 0.001,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (period > 0 and math.isfinite(period)):
            raise ValueError(f"Pacer period must be a positive number of seconds, got {period!r}")
        if spin_s < 0:
            raise ValueError(f"Pacer spin_s must be >= 0, got {spin_s!r}")
        self.period = period
        self.spin_s = spin_s
        self._clock = clock
        self._sleep = sleep
        self.period_errors: list[float] = []
        """Per tick ``|(t_k - t_{k-1}) - T|``, s (ticks after a :meth:`start` are not compared across it)."""
        self.work: list[float] = []
        """Per step, the time from its tick to the next :meth:`wait`, s."""
        self.missed = 0
        """Steps whose work ran past the next deadline, since construction."""
        self.busy = 0.0
        """The last step's work time, s."""
        self.last_tick: float | None = None
        """Time of the last tick (``clock()``), or None right after :meth:`start`."""
        self._next: float | None = None

    def start(self) -> float:
        """Anchor the schedule now (after a reset, homing, an idle wait): the next :meth:`wait` returns at
        once. Ticks before and after a restart are not compared. Returns the anchor time."""
        now = self._clock()
        self._next = now
        self.last_tick = None
        return now

    restart = start

    def wait(self) -> int:
        """Wait for the next tick. Returns how many deadlines the last step's work ran past (0: on time).

        Example (T = 50 ms, last tick at 0): work ends at 30 ms -> sleeps to 50 ms, returns 0; work ends at
        120 ms -> the deadlines at 50 and 100 ms were missed, returns 2, the tick is at 120 ms and the next
        deadline at 170 ms.
        """
        if self._next is None:
            self.start()
        now = self._clock()
        missed = 0
        if self.last_tick is not None:
            self.busy = now - self.last_tick
            self.work.append(self.busy)
        if now > self._next and self.last_tick is not None:
            missed = int((now - self._next) // self.period) + 1
            self.missed += 1
            self._next = now  # re-anchor: start now, do not burst to catch up
        else:
            remaining = self._next - now - self.spin_s
            if remaining > 0:
                self._sleep(remaining)
            while self._clock() < self._next:
                pass
        tick = self._clock()
        if self.last_tick is not None:
            self.period_errors.append(abs(tick - self.last_tick - self.period))
        self.last_tick = tick
        self._next += self.period
        return missed

    def summary(self) -> dict:
        """:func:`timing_summary` of every tick since construction."""
        return timing_summary(self.period_errors, self.work, self.missed, self.period)


@contextlib.contextmanager
def realtime_priority(priority: int | None) -> Iterator[bool]:
    """Run the calling thread under ``SCHED_FIFO`` at ``priority`` (1-99) inside the block; yields whether
    the OS granted it (Linux, with root, ``CAP_SYS_NICE`` or an ``rtprio`` limit). ``None`` does nothing.

    A real-time thread is not preempted by ordinary ones. It does not help a loop that waits on other
    threads (software rendering runs in llvmpipe's own threads: ``benchmarks/record_fast_fifo.json``).
    The previous policy is restored on leaving the block.
    """
    if priority is None:
        yield False
        return
    if not 1 <= priority <= 99:
        raise ValueError(f"real-time priority must be in 1..99, got {priority}")
    try:
        old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as err:
        log.warning("SCHED_FIFO priority %d refused (%s); running with default scheduling", priority, err)
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, old_policy, old_param)
