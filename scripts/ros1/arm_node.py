"""A rospy node standing in for a 6-joint arm's driver and controllers, for tests against a real rosbridge.

Legend: positions in rad, velocities in rad/s, times in s.

Runs under the system Python with Debian's ROS 1 packages (``make setup-ros``); the caller sets
``ROS_MASTER_URI`` and ``ROS_IP=127.0.0.1``. What it does, like the virtual rosbridge's simulated arm:

- publishes ``sensor_msgs/JointState`` on ``/joint_states`` at ``--hz``: the six joints in *reverse*
  order, then an extra joint (``camera_tilt``) that no controller drives, so clients must pick by name;
- takes ``trajectory_msgs/JointTrajectory`` on ``/arm_controller/command`` (joints by name; a point's
  ``time_from_start`` slows a joint below ``--max-velocity``, like ``joint_trajectory_controller``) and
  ``std_msgs/Float64MultiArray`` on ``/arm_group_controller/command`` (six positions in joint order, like
  ``JointGroupPositionController``); targets are clamped into [-2, 2];
- reports on ``/arm_sim/status`` (``std_msgs/String``, JSON), after every command and at 10 Hz:
  ``{"commands": n, "target": [...], "position": [...], "last_command": {...}, "publishing": ...,
  "nonfinite": ..., "time": wall clock}`` (``publishing`` and ``nonfinite`` echo the controls below);
- obeys ``/arm_sim/control`` (``std_msgs/String``, JSON): ``{"publishing": false}`` stops the JointState
  (the driver hangs), ``{"nonfinite": {"shoulder_lift": "nan"}}`` reports that joint's position as NaN
  (``"inf"``, ``"-inf"`` likewise; ``{}`` clears), ``{"home": [...]}`` moves the arm there at once.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import rospy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
EXTRA = "camera_tilt"
LOW, HIGH = -2.0, 2.0


class Arm:
    """Six joints that move toward their targets at a bounded speed; thread-safe."""

    def __init__(self, vmax: float) -> None:
        self.vmax = vmax
        self.position = [0.0] * len(JOINTS)
        self.velocity = [0.0] * len(JOINTS)
        self.target = [0.0] * len(JOINTS)
        self.speed = [vmax] * len(JOINTS)
        self.commands = 0
        self.last_command: dict = {}
        self.publishing = True
        self.nonfinite: dict[str, float] = {}
        self.lock = threading.Lock()

    def command(self, index: list[int], goal: list[float], duration: float, record: dict) -> None:
        with self.lock:
            for i, g in zip(index, goal, strict=True):
                g = min(HIGH, max(LOW, g))
                distance = abs(g - self.position[i])
                self.speed[i] = min(self.vmax, distance / duration) if duration > 0 else self.vmax
                self.target[i] = g
            self.commands += 1
            self.last_command = record

    def step(self, dt: float) -> None:
        with self.lock:
            for i in range(len(JOINTS)):
                limit = self.speed[i] * dt
                move = min(limit, max(-limit, self.target[i] - self.position[i]))
                self.position[i] += move
                self.velocity[i] = move / dt

    def status(self) -> str:
        with self.lock:
            return json.dumps(
                {
                    "commands": self.commands,
                    "target": self.target,
                    "position": self.position,
                    "last_command": self.last_command,
                    "publishing": self.publishing,
                    "nonfinite": {j: str(v) for j, v in self.nonfinite.items()},
                    "time": time.time(),
                }
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hz", type=float, default=50.0, help="JointState rate")
    parser.add_argument("--max-velocity", type=float, default=2.0, help="fastest joint speed, rad/s")
    args = parser.parse_args(rospy.myargv()[1:])
    rospy.init_node("arm_sim")
    arm = Arm(args.max_velocity)
    states = rospy.Publisher("/joint_states", JointState, queue_size=10)
    status = rospy.Publisher("/arm_sim/status", String, queue_size=10, latch=True)

    def on_trajectory(msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        if not msg.points or any(j not in JOINTS for j in names):
            rospy.logerr("arm_sim: bad trajectory for joints %s", names)
            return
        point = msg.points[-1]
        duration = point.time_from_start.to_sec()
        record = {
            "type": "trajectory_msgs/JointTrajectory",
            "joint_names": names,
            "positions": list(point.positions),
            "time_from_start": duration,
            "n_points": len(msg.points),
        }
        arm.command([JOINTS.index(j) for j in names], list(point.positions), duration, record)
        status.publish(arm.status())

    def on_group(msg: Float64MultiArray) -> None:
        if len(msg.data) != len(JOINTS):
            rospy.logerr("arm_sim: %d positions for %d joints", len(msg.data), len(JOINTS))
            return
        record = {"type": "std_msgs/Float64MultiArray", "positions": list(msg.data)}
        arm.command(list(range(len(JOINTS))), list(msg.data), 0.0, record)
        status.publish(arm.status())

    def on_control(msg: String) -> None:
        control = json.loads(msg.data)
        with arm.lock:
            if "publishing" in control:
                arm.publishing = bool(control["publishing"])
            if "nonfinite" in control:
                arm.nonfinite = {j: float(v) for j, v in control["nonfinite"].items()}
            if "home" in control:
                arm.position = [float(x) for x in control["home"]]
                arm.target = list(arm.position)

    rospy.Subscriber("/arm_controller/command", JointTrajectory, on_trajectory, queue_size=100)
    rospy.Subscriber("/arm_group_controller/command", Float64MultiArray, on_group, queue_size=100)
    rospy.Subscriber("/arm_sim/control", String, on_control, queue_size=10)
    rate, period, tick = rospy.Rate(args.hz), 1.0 / args.hz, 0
    while not rospy.is_shutdown():
        arm.step(period)
        with arm.lock:
            msg = JointState(name=[*reversed(JOINTS), EXTRA])
            msg.header.stamp = rospy.Time.now()
            position = [arm.nonfinite.get(j, arm.position[i]) for i, j in enumerate(JOINTS)]
            msg.position = [*reversed(position), 0.0]
            msg.velocity = [*reversed(arm.velocity), 0.0]
            msg.effort = []
            publishing = arm.publishing
        if publishing:
            states.publish(msg)
        tick += 1
        if tick % max(1, round(args.hz / 10)) == 0:
            status.publish(arm.status())
        try:
            rate.sleep()
        except rospy.ROSInterruptException:
            break


if __name__ == "__main__":
    main()
