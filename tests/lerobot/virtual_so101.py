"""SO-101 arms for the LeRobot backend tests: the virtual Feetech arm (``gipo-robot virtual-arm``), calibrated
by LeRobot's own ``calibrate()`` (the procedure ``lerobot-calibrate`` runs), and the configs naming them.

LeRobot's procedure asks the operator twice: to put the arm in the middle of its range (``input()``), then
to move every joint through its range until Enter. Here the operator is a script: the arm rests in the
virtual arm's zero pose for the first, and :func:`lerobot_calibrate` moves it by hand
(``VirtualServoBus.move_by_hand``) through :data:`SWEEP` while LeRobot records, then presses Enter.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gipo_robot.hardware.emulators.servo_arm import JOINT_RANGES

#: Poses the scripted operator moves the limp arm through while LeRobot records the ranges, rad: each
#: joint to 90 % of either end of the virtual arm's range, then back to the zero pose.
SWEEP = [0.9 * np.array(JOINT_RANGES)[:, 0], 0.9 * np.array(JOINT_RANGES)[:, 1], np.zeros(6)]
#: rad per tick in LeRobot's degree scale: 360 degrees per 4095 ticks.
K = 2.0 * math.pi / 4095


def lerobot_calibrate(bus, folder: Path, kind: str, kind_type: str, device_id: str, monkeypatch) -> dict:
    """Run LeRobot's ``calibrate()`` of a ``kind`` (robot/teleop) device on the virtual arm ``bus``; returns
    the calibration file LeRobot wrote (``<folder>/<device_id>.json``), as JSON."""
    import lerobot.motors.motors_bus as motors_bus

    from gipo_robot.hardware.lerobot_config import make_lerobot

    table = {"type": kind_type, "port": bus.port, "id": device_id, "calibration_dir": str(folder)}
    device = make_lerobot(kind, table, "test")
    bus.move_by_hand(np.zeros(6))
    poses = iter(SWEEP)

    def enter_pressed() -> bool:  # the operator moves the arm to the next pose; Enter after the last
        pose = next(poses, None)
        if pose is not None:
            bus.move_by_hand(pose)
        return pose is None

    with monkeypatch.context() as patch:
        patch.setattr("builtins.input", lambda prompt="": "")
        patch.setattr(motors_bus, "enter_pressed", enter_pressed)
        device.bus.connect()
        try:
            device.calibrate()
        finally:
            device.bus.disconnect(disable_torque=False)
    return json.loads((folder / f"{device_id}.json").read_text())


def lerobot_config(path: Path, kind: str, table: dict, **extra) -> Path:
    """Write ``{"type": "lerobot", kind: table, **extra}`` to ``path`` (JSON); returns the path."""
    path.write_text(json.dumps({"type": "lerobot", kind: table, **extra}))
    return path


def follower(folder_out: Path, port: str, calibration_dir: Path, **extra) -> Path:
    """An so101_follower config file in ``folder_out`` for the arm on ``port``, calibrated in
    ``calibration_dir`` (the ``calibration`` fixture's folder); ``extra`` are gipo-robot's keys."""
    table = {
        "type": "so101_follower",
        "port": port,
        "id": "follower",
        "calibration_dir": str(calibration_dir),
    }
    return lerobot_config(folder_out / "follower.json", "robot", table, **extra)
