"""`virtual-arm` and `virtual-rosbridge`, started as users start them and driven through a robot config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gipo_robot.hardware.config import load_robot

CLI = [sys.executable, "-c", "from gipo_robot.cli import app; app()"]


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the command exited early: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready within {timeout} s")
        time.sleep(0.1)


def test_virtual_arm_writes_a_config_that_drives_the_arm(tmp_path: Path) -> None:
    config = tmp_path / "arm.json"
    proc = _start(["virtual-arm", "--protocol", "dynamixel", "--config-out", str(config)])
    try:
        _wait_for(lambda: config.exists() and config.stat().st_size > 0, "robot config", proc)
        assert json.loads(config.read_text())["type"] == "dynamixel"
        robot = load_robot(str(config))
        with robot:
            robot.reset()
            # normalised 0 is the middle of every joint's range: the arm must get there (within 0.05 rad)
            target = robot.spec.to_physical(np.zeros(robot.spec.action_dim))
            for _ in range(60):
                robot.act(np.zeros(robot.spec.action_dim))
                time.sleep(robot.spec.period)
            assert np.abs(robot.observe()["joint_pos"] - target).max() < 0.05
    finally:
        _stop(proc)


def test_virtual_rosbridge_serves_a_ros_robot(tmp_path: Path) -> None:
    roslibpy = pytest.importorskip("roslibpy")
    del roslibpy
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    config = tmp_path / "ros.json"
    config.write_text(json.dumps({
        "type": "ros", "host": "127.0.0.1", "port": port, "joint_names": joints,
        "joint_low": [-2] * 6, "joint_high": [2] * 6, "max_joint_velocity": 1.0,
        "command_topic": "/arm_controller/command", "command_type": "trajectory_msgs/JointTrajectory",
    }))  # fmt: skip
    proc = _start(["virtual-rosbridge", "--port", str(port)])

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        _wait_for(listening, "rosbridge port", proc)
        with load_robot(str(config)) as robot:
            # normalised 0.25 in [-2, 2] rad is 0.5 rad; at 1 rad/s every joint gets there within ~0.5 s
            for _ in range(40):
                robot.act(np.full(6, 0.25))
                time.sleep(0.05)
            np.testing.assert_allclose(robot.observe()["joint_pos"], 0.5, atol=0.02)
    finally:
        _stop(proc)
