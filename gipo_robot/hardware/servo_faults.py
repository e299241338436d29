"""What a servo's hardware error report means for the arm: :class:`ServoFaultError` and its message.

A servo reports conditions such as overload or overheating in its status packets
(:data:`~gipo_robot.hardware.servo_protocol.HARDWARE_ERRORS`), and both vendors' default protection switches
its torque off for the worst of them. :class:`~gipo_robot.hardware.serial_bus.SerialArm` raises a
:class:`ServoFaultError` naming each servo, its joint, its conditions and whether it is limp; the loops
treat it as any :class:`~gipo_robot.hardware.robot.RobotError` (hold, commit the episode as failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gipo_robot.hardware.robot import RobotError

__all__ = ["ServoFaultError", "servo_fault"]


class ServoFaultError(RobotError):
    """Servos reported hardware errors or dropped their torque while the arm should hold.

    Attributes:
        faults: Servo id -> the conditions it reports, e.g. ``{3: ("overload",)}`` (no entry for a servo
            that only went limp).
        limp: Ids of the servos whose torque switch reads off while the arm should hold.
    """

    def __init__(self, message: str, faults: Mapping[int, tuple[str, ...]], limp: Sequence[int]) -> None:
        super().__init__(message)
        self.faults = dict(faults)
        self.limp = tuple(limp)


def servo_fault(
    arm: str,
    protocol: str,
    joints: Mapping[int, str],
    faults: Mapping[int, tuple[str, ...]],
    limp: Sequence[int],
    *,
    holding: bool,
) -> ServoFaultError:
    """The error for ``faults`` and ``limp`` servos, in words.

    Args:
        arm: The arm's name and port, e.g. ``"so100 on /dev/ttyACM0"``.
        protocol: ``"dynamixel"`` or ``"feetech"`` (what clears the fault differs).
        joints: Servo id -> joint name.
        faults: Servo id -> the conditions it reports.
        limp: Ids of the servos whose torque is off.
        holding: Whether the arm's torque should be on (the other joints hold).
    """
    parts = []
    for servo_id in sorted(set(faults) | set(limp)):
        text = f"servo id {servo_id} (joint {joints[servo_id]!r})"
        if faults.get(servo_id):
            text += f" reports {', '.join(faults[servo_id])}"
        if servo_id in limp:
            text += (" and" if faults.get(servo_id) else "") + " has its torque off (limp)"
        parts.append(text)
    # a Dynamixel in shutdown ignores torque-on until rebooted; a servo that is only limp does not
    remedy = (
        "reboot the servo (power-cycle it) before driving it again"
        if protocol == "dynamixel" and any(faults.values())
        else "torque comes back on the next reset"
    )
    message = (
        f"{arm}: {'; '.join(parts)}. "
        + ("The other joints hold; r" if holding else "R")
        + f"emove the cause (load, heat, supply voltage), then {remedy}"
    )
    return ServoFaultError(message, faults, limp)
