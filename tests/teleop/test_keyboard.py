"""The terminal keyboard device, driven by real keystrokes through a real pseudo-terminal.

Unit tests put the device on the slave end of ``os.openpty()`` and type on the master end (bytes pass the
kernel's tty line discipline, so cbreak mode is what lets single keys through). The end-to-end tests run
``gipo-robot record --device keyboard`` as a child on a pty (``pty.fork``) and type a session.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import termios
import time

import numpy as np
import pytest

from gipo_robot.datasets import EpisodeStore, validate
from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.teleop.devices import TeleopError
from gipo_robot.teleop.keyboard import KeyboardDevice

GIPO = os.path.join(os.path.dirname(sys.executable), "gipo-robot")


def ee_spec() -> RobotSpec:
    names = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
    return RobotSpec(
        name="test-arm", action_mode="ee_delta", action_names=names, action_low=-np.ones(7),
        action_high=np.ones(7), joint_names=("j0",), joint_low=[-1.0], joint_high=[1.0],
        max_joint_velocity=[1.0], control_hz=20.0, obs_shapes={}, obs_dtypes={},
    )  # fmt: skip


def joint_spec() -> RobotSpec:
    # Two joints, action range = joint range [-1, 1] rad and [0, 2] rad.
    return RobotSpec(
        name="servo-arm", action_mode="joint_position", action_names=("a", "b"), action_low=[-1.0, 0.0],
        action_high=[1.0, 2.0], joint_names=("a", "b"), joint_low=[-1.0, 0.0], joint_high=[1.0, 2.0],
        max_joint_velocity=[1.0, 1.0], control_hz=10.0, obs_shapes={"joint_pos": (2,)},
        obs_dtypes={"joint_pos": "float64"},
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def type_keys(master: int, keys: bytes) -> None:
    os.write(master, keys)
    time.sleep(0.05)  # let the line discipline hand the bytes to the slave side


def test_cbreak_while_open_and_the_terminal_restored_on_close(terminal):
    master, slave = terminal
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO  # a fresh pty is canonical, echoing
    device = KeyboardDevice(ee_spec(), fd=slave)
    with device:
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        type_keys(master, b"w")  # without a newline: only reaches us because ICANON is off
        assert device.poll().action[0] == pytest.approx(0.5)
    assert termios.tcgetattr(slave) == before


def test_the_terminal_is_restored_when_the_loop_raises(terminal):
    _, slave = terminal
    before = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError, match="boom"), KeyboardDevice(ee_spec(), fd=slave):
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before


def test_keys_map_to_ee_actions_and_events(terminal):
    master, slave = terminal
    clock = Clock()
    with KeyboardDevice(ee_spec(), fd=slave, speed=0.5, hold_s=0.15, clock=clock) as device:
        type_keys(master, b"\r")
        assert device.poll().events == ("start",)
        # w (+x) and f (-z) held, space closes the gripper; at speed 0.5: dx = +0.5, dz = -0.5, gripper +1.
        type_keys(master, b"wf ")
        cmd = device.poll()
        np.testing.assert_allclose(cmd.action, [0.5, 0, -0.5, 0, 0, 0, 1.0])
        # 0.1 s later, no new press: still held (0.1 <= hold_s); 0.2 s after the press: released.
        clock.t = 0.1
        np.testing.assert_allclose(device.poll().action, [0.5, 0, -0.5, 0, 0, 0, 1.0])
        clock.t = 0.2
        np.testing.assert_allclose(device.poll().action, [0, 0, 0, 0, 0, 0, 1.0])
        # Auto-repeat: presses every 1/30 s keep the key held throughout.
        for i in range(6):
            clock.t = 1.0 + i / 30
            type_keys(master, b"a")
            assert device.poll().action[1] == pytest.approx(0.5)
        # Speed up twice (0.5 -> 0.7), arrow keys (escape sequences) are ignored, then the events.
        type_keys(master, b"++\x1b[A\x1b[Bu")
        assert device.poll().action[5] == pytest.approx(0.7)
        type_keys(master, b"ynxhtb\x04")
        assert device.poll().events == (
            "save_success", "save_failure", "discard", "reset", "takeover", "estop", "quit"
        )  # fmt: skip


def test_joint_position_mode_integrates_a_target_from_the_observed_joints(terminal):
    master, slave = terminal
    clock = Clock()
    with KeyboardDevice(joint_spec(), fd=slave, speed=1.0, clock=clock) as device:
        # Joint b at 1.5 rad in [0, 2] is normalised 2 * 1.5 / 2 - 1 = 0.5; joint a at 0 rad -> 0.
        device.begin_episode({"joint_pos": np.array([0.0, 1.5])})
        np.testing.assert_allclose(device.poll().action, [0.0, 0.5])
        # Select joint 2 and hold s: at speed 1 a step moves 2 / (4 s * 10 Hz) = 0.05 normalised units.
        type_keys(master, b"2s")
        np.testing.assert_allclose(device.poll().action, [0.0, 0.45])
        np.testing.assert_allclose(device.poll().action, [0.0, 0.40])


def test_not_a_terminal_is_a_clear_error(tmp_path):
    path = tmp_path / "not-a-tty"
    path.write_text("")
    with open(path) as f, pytest.raises(TeleopError, match="needs a terminal"):
        KeyboardDevice(ee_spec(), fd=f.fileno()).start()
    with pytest.raises(ValueError, match=r"KeyboardDevice\.speed"):
        KeyboardDevice(ee_spec(), speed=2.0)


# ------------------------------------------------------------------------------------ end to end


class Session:
    """``gipo-robot record`` running as a child on a pty; we are the operator on the master end."""

    def __init__(self, *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: stdin/stdout/stderr are the pty
            os.environ["MUJOCO_GL"] = "egl"
            os.execv(GIPO, [GIPO, "record", *args])
        self.pid, self.fd, self.output = pid, fd, b""

    def read(self, timeout: float = 0.1) -> None:
        while select.select([self.fd], [], [], timeout)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the child closed the pty
                return
            if not chunk:
                return
            self.output += chunk

    def wait_for(self, text: bytes, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < end, f"no {text!r} in {self.output[-2000:]!r}"
            self.read()

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def finish(self, timeout: float = 60.0) -> tuple[int, list]:
        end = time.monotonic() + timeout
        while True:
            self.read()
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < end, self.output[-2000:]
        self.read()
        attrs = termios.tcgetattr(self.fd)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), attrs

    def summary(self) -> dict:
        lines = [ln for ln in self.output.decode(errors="replace").splitlines() if ln.startswith("{")]
        return json.loads(lines[-1])


@pytest.mark.skipif(not os.path.exists(GIPO), reason="the gipo-robot console script is not installed")
def test_record_an_episode_by_typing(tmp_path):
    out = tmp_path / "typed.zarr"
    session = Session("--robot", "sim:Lift", "--device", "keyboard", "--out", str(out), "--json")
    session.wait_for(b"keyboard controls")
    session.wait_for(b"idle")  # the status line: the loop runs and waits for Enter
    session.type(b"\r")
    session.wait_for(b"REC")
    for _ in range(30):  # hold w (+x) for ~1 s with the terminal's auto-repeat rate
        session.type(b"w")
        time.sleep(1 / 30)
    time.sleep(0.5)  # released
    session.type(b" ")  # close the gripper
    time.sleep(0.3)
    session.type(b"y")  # save, successful
    code, attrs = session.finish()
    assert code == 0, session.output[-3000:]
    assert attrs[3] & termios.ICANON and attrs[3] & termios.ECHO  # the terminal is back to normal
    summary = session.summary()
    assert summary["saved"] == [0] and summary["ended"] == "target"
    store = validate(out)
    ep = store.episode(0)
    assert store.episode_meta(0).success and store.episode_meta(0).extra["end"] == "operator"
    dx, gripper = ep["action"][:, 0], ep["action"][:, 6]
    # While w was held the arm was asked for +x (0.5, less while the guard's soft start ramps up); after
    # the release, 0. The gripper stays open (-1) until space, then closed (+1) up to the end.
    assert (dx > 0.04).sum() >= 10 and np.all(dx >= 0) and dx[-3:].max() == 0.0
    assert gripper[0] == -1.0 and gripper[-1] == 1.0 and np.all(np.diff(gripper) >= 0)
    # The arm moved forward (+x) by at least a few centimetres.
    assert ep["obs.robot0_eef_pos"][-1, 0] - ep["obs.robot0_eef_pos"][0, 0] > 0.03


@pytest.mark.skipif(not os.path.exists(GIPO), reason="the gipo-robot console script is not installed")
def test_ctrl_c_mid_episode_drops_it_and_restores_the_terminal(tmp_path):
    out = tmp_path / "interrupted.zarr"
    session = Session("--robot", "sim:Lift", "--device", "keyboard", "--out", str(out), "--json")
    session.wait_for(b"idle")
    session.type(b"\rwww")
    session.wait_for(b"REC")
    time.sleep(0.3)
    session.type(b"\x03")  # Ctrl-C: SIGINT from the terminal (cbreak keeps ISIG)
    code, attrs = session.finish()
    assert code == 0, session.output[-3000:]
    assert attrs[3] & termios.ICANON and attrs[3] & termios.ECHO
    assert session.summary()["ended"] == "interrupted"
    assert EpisodeStore.open(out).n_episodes == 0


def test_sigterm_is_a_clean_exit_too(tmp_path):
    out = tmp_path / "terminated.zarr"
    session = Session("--robot", "sim:Lift", "--device", "keyboard", "--out", str(out), "--json")
    session.wait_for(b"idle")
    os.kill(session.pid, signal.SIGTERM)
    code, attrs = session.finish()
    assert code == 0 and attrs[3] & termios.ICANON
    assert session.summary()["ended"] == "interrupted"
