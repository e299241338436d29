"""Fixtures: the ROS 1 system (rosmaster, rosapi, the real rosbridge 0.11.17, a rospy arm) and a monitor.

Without Debian's ROS 1 packages the tests here skip, saying to run ``make setup-ros``; with
``GIPO_REQUIRE_ROS=1`` (``make test-ros``, and so CI) a missing package is a failure instead.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from tests.hardware.ros1.stack import Ros1System, missing

roslibpy = pytest.importorskip("roslibpy")

SO100_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def pytest_configure(config):
    config.addinivalue_line("markers", "ros1: needs Debian's ROS 1 packages (make setup-ros); make test-ros")


@pytest.fixture(scope="session")
def ros1():
    """The running :class:`Ros1System`; stopped after the session."""
    reason = missing()
    if reason is not None:
        if os.environ.get("GIPO_REQUIRE_ROS") == "1":
            pytest.fail(f"GIPO_REQUIRE_ROS=1 but {reason}")
        pytest.skip(reason)
    system = Ros1System()
    try:
        yield system.start()
    finally:
        system.stop()


class ArmMonitor:
    """A second roslibpy client on the same rosbridge: reads the arm node's status, sends it controls."""

    def __init__(self, port: int) -> None:
        self.ros = roslibpy.Ros(host="127.0.0.1", port=port, transport="twisted")
        factory = self.ros.factory  # reconnect within a second when a test restarts the server
        factory.initialDelay = factory.delay = 0.2
        factory.maxDelay = 1.0
        self.ros.run(timeout=10)
        self._status: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._topic = roslibpy.Topic(self.ros, "/arm_sim/status", "std_msgs/String")
        self._topic.subscribe(self._on_status)
        self._control = roslibpy.Topic(self.ros, "/arm_sim/control", "std_msgs/String")
        self._control.advertise()

    def _on_status(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._status = json.loads(msg["data"])

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def fresh(self, timeout: float = 30.0) -> dict[str, Any]:
        """The first status the arm node sends after this call (its ``time`` is its wall clock)."""
        now = time.time()
        return self.wait(lambda s: s["time"] > now, timeout)

    def wait(self, condition, timeout: float = 10.0, fail: bool = True) -> dict[str, Any]:
        """The first status for which ``condition(status)`` holds; after ``timeout`` s a test failure, or
        with ``fail=False`` the last status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status and condition(status):
                return status
            time.sleep(0.01)
        if not fail:
            return self.status()
        pytest.fail(f"arm status never met the condition within {timeout} s; last: {self.status()}")

    def control(self, timeout: float = 10.0, **settings: Any) -> None:
        """Send ``settings`` to the arm node until its status echoes them (a publish may precede the
        subscriber's connection)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._control.publish(roslibpy.Message({"data": json.dumps(settings)}))
            time.sleep(0.1)
            if all(self.status().get(k) == v for k, v in settings.items() if k != "home"):
                return
        pytest.fail(f"the arm node did not take {settings} within {timeout} s; status {self.status()}")

    def close(self) -> None:
        self._topic.unsubscribe()
        self._control.unadvertise()
        self.ros.close()


@pytest.fixture(scope="session")
def monitor(ros1):
    arm = ArmMonitor(ros1.ws_port)
    try:
        yield arm
    finally:
        arm.close()


@pytest.fixture
def arm_sim(monitor):
    """The arm node at rest at 0 rad, publishing, no faults; restored after the test too."""
    monitor.control(publishing=True, nonfinite={})
    monitor.control(home=[0.0] * 6)
    monitor.wait(lambda s: max(abs(x) for x in s["position"]) < 1e-9)
    yield monitor
    monitor.control(publishing=True, nonfinite={})


def robot_config(ros1: Ros1System, **overrides: Any) -> dict[str, Any]:
    """A ``type = "ros"`` config for the arm node behind the real rosbridge."""
    config = {
        "type": "ros",
        "joint_names": list(SO100_JOINTS),
        "joint_low": [-2.0] * 6,
        "joint_high": [2.0] * 6,
        "max_joint_velocity": 2.0,
        "port": ros1.ws_port,
        "connect_timeout_s": 10.0,
        "stale_after_s": 0.5,
        "reconnect_initial_s": 0.2,
        "reconnect_max_s": 1.0,
    }
    return config | overrides
