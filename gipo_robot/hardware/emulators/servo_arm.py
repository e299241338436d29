"""The emulated servo arm behind the virtual bus: each servo's control table and the MuJoCo joints it drives.

Legend: ``J`` number of joints (6, one servo each, the gripper included); ticks are encoder steps.

What each emulated servo does (per the vendors' manuals, simplified where noted):

- position: the reported position is ``raw + homing_sign * homing_offset`` (Dynamixel adds the offset,
  Feetech subtracts it and wraps to 0..4095), where ``raw = 2048 + mount_offset + q / rad_per_tick`` and
  ``mount_offset`` is how far this servo's horn was assembled off its middle (so an uncalibrated arm
  does not read 0 rad in its zero pose, as on a freshly built arm);
- goal position: the servo ramps its set point toward the goal at the model's no-load speed; a position
  actuator tracks the set point. Dynamixel refuses a goal outside Min/Max Position Limit (data limit
  error) in position mode (Operating Mode 3, the factory one; the multi-turn modes 4 and 5 that LeRobot's
  Koch arms use ignore the limits); Feetech clamps it into the limits;
- torque off: no actuator force; gear friction keeps a limp arm where it is near its zero pose (a human
  can move it: :meth:`EmulatedArm.move_by_hand`);
- Dynamixel refuses EEPROM writes (homing offset, limits, ...) while torque is on (access error) and any
  write to read-only registers; writes to ID and baud rate are refused too (not emulated);
- hardware errors (:meth:`EmulatedServo.raise_error`): a condition such as overload is reported in every
  status packet (Feetech: its bit in the error byte; Dynamixel: the alert bit, the condition in Hardware
  Error Status) and, if the Shutdown / Unloading Condition register lists it (by default overload and
  overheating do), switches the torque off and keeps it off: the joint goes limp. It lasts until the
  emulator stops (a reboot). :meth:`EmulatedServo.drop_torque` switches torque off without an error, as a
  brown-out reset does. A Feetech servo also shows its conditions in its Status register (65);
- the rest of the control table LeRobot's driver touches (:data:`EXTRA_REGISTERS`: firmware version,
  return delay, gains, torque/current limits, acceleration, Phase) holds what was written and reads back;
  of these only Feetech's Phase bit 4 (multi-turn angle feedback: positions no longer wrap into one turn)
  changes what the servo does.

The arm is ``assets/virtual_arm.xml``, stepped in real time. The packets that reach these servos are
parsed by :mod:`gipo_robot.hardware.emulators.virtual_bus`.
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Sequence

import numpy as np

from gipo_robot.hardware import servo_protocol as sp

__all__ = ["DEFAULT_MOUNT_OFFSETS", "JOINT_NAMES", "JOINT_RANGES", "EmulatedArm", "EmulatedServo"]

#: Joint names of ``assets/virtual_arm.xml``, in servo order.
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
#: The model's joint ranges (rad), the ``joint_limits`` of the virtual arm's robot config.
JOINT_RANGES = ((-2.0, 2.0), (-1.8, 1.8), (-1.7, 1.7), (-1.8, 1.8), (-2.5, 2.5), (-0.2, 1.7))
#: How far each servo's horn sits off its middle at the zero pose, ticks (undone by calibration).
DEFAULT_MOUNT_OFFSETS = (120, -85, 200, -160, 45, -30)
_TEMPERATURE_C = 31
_TORQUE_OFF_REGISTER = {"dynamixel": "shutdown", "feetech": "unloading_condition"}
#: Protocol -> registers of the real servos that this project's driver does not use but LeRobot's does
#: (its ``configure_motors``, the SO/Koch arms' ``configure``, a health check), as (register, the value a
#: servo holds out of the box). Addresses from the vendors' tables (Feetech "SMS/STS memory table", ROBOTIS
#: X series control table), the same as LeRobot's ``motors/*/tables.py``; a few are in the model's table
#: too and are listed for their factory value. They are stored and read back; what they tune (gains, torque
#: and current limits, acceleration, return delay) is not emulated.
EXTRA_REGISTERS: dict[str, dict[str, tuple[sp.Register, int]]] = {
    "feetech": {
        "firmware_major_version": (sp.Register(0, 1, eeprom=True), 3),
        "firmware_minor_version": (sp.Register(1, 1, eeprom=True), 10),
        "return_delay_time": (sp.Register(7, 1, eeprom=True), 250),  # 2 us per unit: 500 us
        "response_status_level": (sp.Register(8, 1, eeprom=True), 1),
        "max_torque_limit": (sp.Register(16, 2, eeprom=True), 1000),  # 0.1 % of stall torque
        "phase": (sp.Register(18, 1, eeprom=True), 0),  # bit 4: multi-turn angle feedback (see below)
        "p_coefficient": (sp.Register(21, 1, eeprom=True), 32),
        "d_coefficient": (sp.Register(22, 1, eeprom=True), 32),
        "i_coefficient": (sp.Register(23, 1, eeprom=True), 0),
        "protection_current": (sp.Register(28, 2, eeprom=True), 500),  # 6.5 mA per unit
        "overload_torque": (sp.Register(36, 1, eeprom=True), 80),  # % of max torque while overloaded
        "torque_limit": (sp.Register(48, 2), 1000),
        "present_voltage": (sp.Register(62, 1), 120),  # 0.1 V per unit
        "status": (sp.Register(65, 1), 0),  # the hardware condition bits, as in the status packets
        "maximum_acceleration": (sp.Register(85, 1), 0),
    },
    "dynamixel": {
        "firmware_version": (sp.Register(6, 1, eeprom=True), 52),
        "operating_mode": (sp.Register(11, 1, eeprom=True), 3),  # position control (one turn)
        "return_delay_time": (sp.Register(9, 1, eeprom=True), 250),
        "current_limit": (sp.Register(38, 2, eeprom=True), 1750),
        "velocity_limit": (sp.Register(44, 4, eeprom=True), 445),
        "position_d_gain": (sp.Register(80, 2), 0),
        "position_i_gain": (sp.Register(82, 2), 0),
        "position_p_gain": (sp.Register(84, 2), 400),
        "profile_acceleration": (sp.Register(108, 4), 0),
        "profile_velocity": (sp.Register(112, 4), 0),
    },
}
#: Dynamixel X Operating Mode 3, position control: the only mode that keeps goals within Min/Max Position
#: Limit (extended position, 4, and current-based position, 5, are multi-turn and ignore them).
_DXL_POSITION_MODE = 3
_READ_ONLY = {
    "model_number",
    "firmware_version",
    "firmware_major_version",
    "firmware_minor_version",
    "id",
    "baud_rate",
    "present_position",
    "present_velocity",
    "present_temperature",
    "moving",
    "hardware_error_status",
    "present_voltage",
    "status",
}


class EmulatedServo:
    """One servo's control table (a byte image) plus its joint's goal and set point.

    Args:
        model: The servo model whose control table this is.
        servo_id: The servo's bus ID.
        mount_offset: How far its horn sits off the middle at the joint's zero pose, ticks.
        q_low: The joint's lower range, rad (goals beyond are clamped).
        q_high: The joint's upper range, rad.
    """

    def __init__(self, model: sp.ServoModel, servo_id: int, mount_offset: int, q_low: float, q_high: float):
        self.model, self.id, self.mount = model, servo_id, mount_offset
        self.q_low, self.q_high = q_low, q_high
        extras = EXTRA_REGISTERS[model.protocol]
        self.registers = {**model.registers, **{name: reg for name, (reg, _) in extras.items()}}
        """The whole control table emulated: the model's registers and the :data:`EXTRA_REGISTERS`."""
        self.image = bytearray(max(r.address + r.size for r in self.registers.values()) + 1)
        for name, (_, value) in extras.items():
            self.set(name, value)
        self.set("model_number", model.model_number)
        self.set("id", servo_id)
        self.set("min_position_limit", 0)
        self.set("max_position_limit", model.resolution - 1)
        self.set("present_temperature", _TEMPERATURE_C)
        self.set(_TORQUE_OFF_REGISTER[model.protocol], sp.DEFAULT_TORQUE_OFF_ERRORS[model.protocol])
        self.errors = 0
        """Hardware condition bits (:data:`~gipo_robot.hardware.servo_protocol.HARDWARE_ERRORS`)."""
        self.setpoint = 0.0
        self.torque_switched_on = False
        """Set when torque goes on; the next physics step starts the set point from the measured angle."""
        self.set("goal_position", self.present_ticks(0.0))

    def get(self, name: str) -> int:
        reg = self.registers[name]
        return reg.decode(self.image[reg.address : reg.address + reg.size])

    def set(self, name: str, value: int) -> None:
        reg = self.registers[name]
        self.image[reg.address : reg.address + reg.size] = reg.encode(value)

    @property
    def torque(self) -> bool:
        return bool(self.get("torque_enable"))

    def raise_error(self, bits: int) -> None:
        """Start reporting the conditions ``bits``; torque goes off if one is a torque-off condition."""
        self.errors |= bits
        if self.model.protocol == "dynamixel":
            self.set("hardware_error_status", self.errors)
        if self._torque_off_errors():
            self.set("torque_enable", 0)

    def drop_torque(self) -> None:
        """Torque off with no error reported (a brown-out reset)."""
        self.set("torque_enable", 0)

    def _torque_off_errors(self) -> int:
        return self.errors & self.get(_TORQUE_OFF_REGISTER[self.model.protocol])

    def status_error(self, instruction_error: int = 0) -> int:
        """The error byte of this servo's next status packet (``instruction_error``: Dynamixel's bits 0-6)."""
        if self.model.protocol == "dynamixel":
            return instruction_error | (sp.DXL_ERROR_ALERT if self.errors else 0)
        return self.errors

    def present_ticks(self, q: float) -> int:
        raw = self.model.resolution // 2 + self.mount + round(q / self.model.rad_per_tick)
        present = raw + self.model.homing_sign * self.get("homing_offset")
        return present % self.model.resolution if self._wraps() else present

    def _wraps(self) -> bool:
        """Whether positions wrap into one turn (a Feetech servo, unless Phase bit 4 asks for multi-turn)."""
        return self.model.protocol == "feetech" and not self.get("phase") & 0x10

    def goal_q(self) -> float:
        """The joint angle the goal position register asks for, rad."""
        raw = self.get("goal_position") - self.model.homing_sign * self.get("homing_offset")
        if self._wraps():
            raw %= self.model.resolution
        q = (raw - self.model.resolution // 2 - self.mount) * self.model.rad_per_tick
        return min(max(q, self.q_low), self.q_high)

    def refresh(self, q: float, qdot: float) -> None:
        """Write the measured state into the read-only registers."""
        self.set("present_position", self.present_ticks(q))
        self.set("present_velocity", round(qdot / self.model.velocity_unit))
        self.set("moving", int(abs(qdot) > 0.02))
        if self.model.protocol == "feetech":
            self.set("status", self.errors)

    def read(self, address: int, length: int) -> tuple[bytes, int]:
        """``(data, error)`` of a READ."""
        if address + length > len(self.image) or length == 0:
            bad = sp.DXL_ERROR_DATA_LENGTH if self.model.protocol == "dynamixel" else 0
            return b"", bad
        return bytes(self.image[address : address + length]), 0

    def write(self, address: int, data: bytes) -> int:
        """Apply a WRITE; returns the status error byte (0: accepted)."""
        dxl = self.model.protocol == "dynamixel"
        touched = [
            name
            for name, reg in self.registers.items()
            if reg.address < address + len(data) and address < reg.address + reg.size
        ]
        if address + len(data) > len(self.image):
            return sp.DXL_ERROR_DATA_LENGTH if dxl else 0
        if any(name in _READ_ONLY for name in touched):
            return sp.DXL_ERROR_ACCESS if dxl else 0
        if dxl and self.torque and any(self.registers[n].eeprom for n in touched):
            return sp.DXL_ERROR_ACCESS
        was_on = self.torque
        old = bytes(self.image)
        self.image[address : address + len(data)] = data
        if "goal_position" in touched:
            goal, low, high = (
                self.get(n) for n in ("goal_position", "min_position_limit", "max_position_limit")
            )
            if dxl and self.get("operating_mode") == _DXL_POSITION_MODE and not low <= goal <= high:
                self.image[:] = old
                return sp.DXL_ERROR_DATA_LIMIT
            if not dxl:
                self.set("goal_position", min(max(goal, low), high))
        if "torque_enable" in touched and self._torque_off_errors():
            self.set("torque_enable", 0)  # protection holds torque off until a reboot
        if "torque_enable" in touched and self.torque and not was_on:
            self.torque_switched_on = True
        return 0


class EmulatedArm:
    """The MuJoCo arm and its servos, stepped in real time.

    Args:
        model: Servo model name every servo reports (a key of ``servo_protocol.MODELS``).
        ids: The J servo IDs, in joint order.
        mount_offsets: The J horn offsets, ticks (see the module doc).
        models: The J servos' models, in joint order, where they differ (a Koch arm's XL430s and XL330s);
            None: ``model`` for every servo.
    """

    def __init__(
        self,
        model: str,
        ids: Sequence[int],
        mount_offsets: Sequence[int],
        models: Sequence[str] | None = None,
    ):
        import mujoco

        self._mj = mujoco
        xml = importlib.resources.files("gipo_robot.hardware.emulators") / "assets" / "virtual_arm.xml"
        with importlib.resources.as_file(xml) as path:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        self.servo_model = sp.model_named(model)
        models = [self.servo_model.name] * len(ids) if models is None else models
        self.servos = {
            servo_id: EmulatedServo(sp.model_named(name), servo_id, mount, lo, hi)
            for servo_id, name, mount, (lo, hi) in zip(ids, models, mount_offsets, JOINT_RANGES, strict=True)
        }
        self.order = list(ids)
        self.sim_start = time.monotonic()
        self.refresh()

    def refresh(self) -> None:
        for j, servo_id in enumerate(self.order):
            self.servos[servo_id].refresh(float(self.data.qpos[j]), float(self.data.qvel[j]))

    def step_to(self, now: float, max_steps: int = 100) -> None:
        """Step the physics until its clock catches up with ``now`` (monotonic s), at most ``max_steps``."""
        dt = self.model.opt.timestep
        steps = min(int((now - self.sim_start - self.data.time) / dt), max_steps)
        if steps <= 0:
            return
        for _ in range(steps):
            for j, servo_id in enumerate(self.order):
                servo = self.servos[servo_id]
                vmax = servo.model.max_velocity
                q = float(self.data.qpos[j])
                if not servo.torque:
                    servo.setpoint = q
                    self.data.ctrl[j] = q
                    continue
                if servo.torque_switched_on:
                    servo.setpoint, servo.torque_switched_on = q, False
                servo.setpoint += float(np.clip(servo.goal_q() - servo.setpoint, -vmax * dt, vmax * dt))
                self.data.ctrl[j] = servo.setpoint
            self._mj.mj_step(self.model, self.data)
        if now - self.sim_start - self.data.time > 10 * dt:  # fell behind (loaded machine): skip ahead
            self.sim_start = now - self.data.time
        self.refresh()

    def move_by_hand(self, q: Sequence[float]) -> None:
        """Put the joints at ``q`` (rad), as a human moving a limp arm (torque-on servos fight back)."""
        self.data.qpos[:] = np.asarray(q, dtype=np.float64)
        self.data.qvel[:] = 0.0
        self._mj.mj_forward(self.model, self.data)
        self.refresh()
