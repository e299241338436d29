"""The one Pacer behind deploy, teleop recording and the control-loop benchmark; real-time priority."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from gipo_robot.hardware.pacing import Pacer, realtime_priority, timing_summary


class FakeTime:
    """A clock that only moves when the pacer sleeps or the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_pacer_sleeps_to_absolute_deadlines_and_counts_missed_ones():
    fake = FakeTime()
    pacer = Pacer(0.05, spin_s=0.0, clock=fake.clock, sleep=fake.sleep)
    pacer.start()
    assert pacer.wait() == 0 and fake.slept == []  # the first tick is the anchor itself: no wait
    fake.t = 0.03  # work took 30 ms of the 50 ms period: sleep 20 ms, no miss
    assert pacer.wait() == 0 and fake.slept[-1] == pytest.approx(0.02) and fake.t == pytest.approx(0.05)
    assert pacer.busy == pytest.approx(0.03)
    fake.t = 0.17  # this step's work ended at 170 ms: the deadlines at 100 and 150 ms were missed
    assert pacer.wait() == 2 and pacer.missed == 1 and pacer.last_tick == pytest.approx(0.17)
    fake.t = 0.18  # re-anchored at 170 ms: the next deadline is 220 ms, 40 ms away (no burst)
    assert pacer.wait() == 0 and fake.slept[-1] == pytest.approx(0.04)
    # period errors, wake to wake: 0 (0 -> 50 ms), 70 (50 -> 170), 0 (170 -> 220)
    np.testing.assert_allclose(pacer.period_errors, [0.0, 0.07, 0.0], atol=1e-9)
    pacer.restart()  # e.g. after an idle wait: the schedule starts again from now
    fake.t += 0.01
    assert pacer.wait() == 0 and pacer.period_errors[-1] == pytest.approx(0.0)  # not compared across


def test_timing_summary_by_hand():
    # Errors 1, 3, 2, 4 ms -> p50 = 2.5 ms; p99 by linear interpolation = 3 + 0.97 * 1 = 3.97 ms.
    out = timing_summary([0.001, 0.003, 0.002, 0.004], [0.005] * 4, missed=1, period=0.02)
    assert out["p50_period_error_ms"] == pytest.approx(2.5)
    assert out["p99_period_error_ms"] == pytest.approx(3.97)
    assert out["max_period_error_ms"] == pytest.approx(4.0) and out["missed"] == 1
    assert out["period_ms"] == 20.0 and out["ticks"] == 5


def test_pacer_counts_an_overrun_once_and_does_not_burst():
    # T = 10 ms. Step 3's work takes 25 ms: one missed deadline; the next tick starts at once, and the
    # schedule re-anchors there, so the tick after it is a full period later (not 0 ms to catch up); later
    # gaps follow absolute deadlines (an oversleep of d shortens the next gap by d: bounds for a loaded box).
    pacer = Pacer(0.010)
    pacer.start()
    ticks = []
    for k in range(8):
        pacer.wait()
        ticks.append(pacer.last_tick)
        if k == 3:
            time.sleep(0.025)
    gaps = np.diff(ticks)
    assert pacer.missed == 1
    assert gaps[3] >= 0.025
    assert gaps[4] >= 0.009
    assert gaps[5:].min() >= 0.003
    assert len(pacer.period_errors) == 7 and max(pacer.period_errors) >= 0.015


def test_realtime_priority_is_restored_and_validated():
    before = os.sched_getscheduler(0)
    with realtime_priority(None) as granted:
        assert granted is False and os.sched_getscheduler(0) == before
    with realtime_priority(10) as granted:  # granted where the OS allows it (root, CAP_SYS_NICE)
        assert os.sched_getscheduler(0) == (os.SCHED_FIFO if granted else before)
    assert os.sched_getscheduler(0) == before
    with pytest.raises(ValueError, match=r"1\.\.99"), realtime_priority(0):
        pass
