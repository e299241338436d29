"""A person's recording session: they label the episodes the time limit stops, the arm holds while they
decide, idle is quiet (no watchdog on the status line), and the status line is read through a real pty.
"""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gipo_robot.datasets import EpisodeStore
from gipo_robot.loops.record import RecorderConfig, record
from gipo_robot.sim.robot import SimRobot
from gipo_robot.teleop.devices import DeviceCommand, ScriptedDevice, TeleopDevice

os.environ.setdefault("MUJOCO_GL", "egl")

STILL = np.array([0, 0, 0, 0, 0, 0, -1.0])  # hold still, gripper open: Lift is never solved


class Operator(TeleopDevice):
    """A person at a keyboard, as an event stream: ``start`` when idle, the still action while recording;
    once the 0.4 s time limit has stopped an episode, ``think_polls`` polls of thinking, then the next
    label of ``labels``."""

    name = "operator"

    def __init__(self, labels: list[str], think_polls: int = 5) -> None:
        self.labels = list(labels)
        self.think_polls = think_polls
        self.recording = False
        self.polls_since_begin = 0
        self.polls: list[int] = []  # per episode: polls from begin_episode to end_episode

    @property
    def labels_episodes(self) -> bool:
        return True

    def begin_episode(self, observation):
        self.recording = True
        self.polls_since_begin = 0

    def end_episode(self):
        self.recording = False
        self.polls.append(self.polls_since_begin)

    def poll(self) -> DeviceCommand:
        if not self.recording:
            return DeviceCommand(events=("start",))
        self.polls_since_begin += 1
        # 0.4 s at 20 Hz = 8 steps; polls 9.. come after the time limit: think, then label
        if self.polls_since_begin == 8 + self.think_polls:
            return DeviceCommand(STILL, (self.labels.pop(0),))
        return DeviceCommand(STILL)


@pytest.fixture(scope="module")
def lift():
    robot = SimRobot("Lift", horizon=60)
    yield robot
    robot.close()


def test_the_operator_labels_what_the_time_limit_stopped(lift, tmp_path):
    # Three episodes stopped by the 0.4 s limit (8 steps). The operator says y, x, n: a success (the
    # simulator says failure: the hint is only a hint), a discard, a failure. While they think (5 polls)
    # no step is taken and nothing is recorded.
    out = tmp_path / "labels.zarr"
    device = Operator(["save_success", "discard", "save_failure"])
    status = io.StringIO()
    config = RecorderConfig(out=str(out), episodes=2, max_seconds=0.4, realtime=False)
    result = record(lift, device, config, status_stream=status)
    assert result.saved == [0, 1] and result.discarded == 1 and result.successes == 1
    assert device.polls == [13, 13, 13]  # 8 steps + 5 polls of thinking each
    store = EpisodeStore.open(out)
    metas = [store.episode_meta(i) for i in (0, 1)]
    assert [m.success for m in metas] == [True, False]
    assert [m.length for m in metas] == [8, 8]
    assert {(m.extra["end"], m.extra["label"]) for m in metas} == {("time_limit", "operator")}
    text = status.getvalue()
    assert "stopped (time limit; sim:Lift says failure), arm holding" in text
    assert "episode 0 saved (success, time_limit, labelled by operator)" in text


def test_the_scripted_device_keeps_the_task_as_its_label(lift, tmp_path):
    # The scripted operator does not label: the time limit (8 steps, too few for the expert to lift the
    # cube) saves at once with the task's success.
    out = tmp_path / "scripted.zarr"
    config = RecorderConfig(out=str(out), episodes=1, max_seconds=0.4, realtime=False, status=False)
    result = record(lift, ScriptedDevice.expert(lift), config)
    meta = EpisodeStore.open(out).episode_meta(0)
    assert result.saved == [0] and meta.length == 8 and not meta.success
    assert (meta.extra["end"], meta.extra["label"]) == ("time_limit", "task")


# ------------------------------------------------------------------------------------------ through a pty


class Terminal:
    """``gipo-robot`` on a pseudo-terminal, as a person's shell runs it: keys in, the screen's bytes out."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        cli = Path(sys.executable).with_name("gipo-robot")
        self.proc = subprocess.Popen(
            [str(cli), *args], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.screen = b""

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    return

    def wait_for(self, text: str, seconds: float = 120.0) -> None:
        end = time.monotonic() + seconds
        while text.encode() not in self.screen:
            assert time.monotonic() < end, f"no {text!r} on screen:\n{self.text[-2000:]}"
            assert self.proc.poll() is None, f"exited before {text!r}:\n{self.text[-2000:]}"
            self.read(0.1)

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace")

    def close(self) -> None:
        """Kill the command if it is still running (a failed test), and free the terminal."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def test_in_a_terminal_idle_is_quiet_and_the_operator_labels(tmp_path):
    # Keyboard on Lift, 1 s episodes. Episode 1 stops at the time limit: the arm holds (well past the
    # guard's 250 ms watchdog) until `y`; idle for 1 s; episode 2 stops and is discarded with `x`; Ctrl-D.
    # Before: the time limit saved "failure, time_limit" at once, and each idle period printed
    # "sim:Lift: watchdog: no action for 250 ms, holding" into the status line.
    out = tmp_path / "tty.zarr"
    term = Terminal(["record", "--robot", "sim:Lift", "--device", "keyboard", "--episodes", "2",
                     "--max-seconds", "1", "--out", str(out)])  # fmt: skip
    try:
        term.wait_for("idle | saved 0/2")
        term.press("\r")
        term.wait_for("label it: y success, n failure, x discard")
        term.read(1.0)  # the operator thinks; the arm holds
        assert "LABEL episode 1/2" in term.text and "sim:Lift says failure" in term.text
        term.press("y")
        term.wait_for("episode 0 saved (success, time_limit, labelled by operator)")
        term.read(1.0)  # idle
        term.press("\r")
        term.wait_for("LABEL episode 2/2")
        term.press("x")
        term.wait_for("discarded after 20 steps")
        term.read(0.5)
        term.press("\x04")  # Ctrl-D: quit
        term.wait_for("session ended: quit")
        assert term.proc.wait(timeout=60) == 0, term.text[-2000:]
    finally:
        term.close()
    assert "watchdog" not in term.text
    store = EpisodeStore.open(out)
    assert store.n_episodes == 1 and store.episode_meta(0).success
    assert store.episode_meta(0).extra["label"] == "operator"
