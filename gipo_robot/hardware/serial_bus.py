"""Servo-bus arms (SO-100-like, Koch-like) over a serial port: :class:`SerialArm`.

Legend: ``J`` number of joints (one servo each, the gripper included); ticks are encoder steps.

**Which code speaks the protocol.** The vendors' own SDKs (ROBOTIS ``dynamixel-sdk``, Feetech
``feetech-servo-sdk``), through :mod:`gipo_robot.hardware.servo_sdk`, which works around their rough
edges. Using them means the driver and the virtual bus (:mod:`gipo_robot.hardware.emulators.virtual_bus`,
written from the manuals in :mod:`gipo_robot.hardware.servo_protocol`) are two independent
implementations that the tests play against each other, so a shared misreading of the protocol cannot
hide. Register values are encoded and decoded here
(:class:`~gipo_robot.hardware.servo_protocol.Register`: Feetech's sign-magnitude, either byte order);
the SDKs only move bytes.

**Errors.** Wrong port, a servo that does not answer, a servo of another model: :class:`RobotError`
naming the port and the servo id, raised by :meth:`connect` before anything is written. A timeout or a
bad checksum is retried up to ``retries`` times per transaction (every retry is counted in
:attr:`SerialArm.bus_stats`); when a transaction still fails, :class:`BusError`. :meth:`hold` never
raises.

**Late replies.** A reply is taken only if it carries the id and the data length asked for (others are
dropped, counted as ``unmatched``), and only within ``timeout_s``: after a timeout the bus is drained for
another ``timeout_s`` (and until it is quiet) before the retry, so a late reply is discarded (counted as
``late``) instead of being read as the answer to the retry or to the next request, which would make every
reading one transaction stale. A bus that answers later than ``timeout_s`` every time ends in a
:class:`BusError` that says so.

**Servo faults.** Every status packet carries an error byte, read on every reply: Feetech sets one bit
per condition (overload, overheating, input voltage, overcurrent, angle sensor), Dynamixel sets its alert
bit and keeps the conditions in its Hardware Error Status register (overload, overheating, input voltage,
electrical shock, motor encoder), which is then read. Any condition is a :class:`ServoFaultError` naming
the servo, its joint and the conditions, and whether its torque is off (both vendors' default protection
switches torque off on overload and overheating). While torque should be on, ``observe`` also reads every
servo's torque switch (``health_check_every``), so a servo that went limp without an error bit is a
:class:`ServoFaultError` too. The arm is left as it is: the faulted servo limp, the others holding.

**Torque.** ``connect`` does not switch torque on; ``reset`` and the first ``act`` do, after setting the
goal to the present position so nothing jumps. A leader arm is used torque-off:
``arm.torque(False)`` then ``arm.read_positions()``. ``disconnect`` leaves torque on, holding the last
position (a follower arm switched limp would fall).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.calibration import (
    MotorCalibration,
    load_calibration,
    rad_to_ticks,
    save_calibration,
    ticks_to_rad,
)
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec
from gipo_robot.hardware.serial_config import SerialArmConfig
from gipo_robot.hardware.servo_faults import ServoFaultError, servo_fault
from gipo_robot.hardware.servo_sdk import CommError, SdkBus, list_ports

__all__ = ["BusError", "SerialArm", "SerialArmConfig", "ServoFaultError"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class BusError(RobotError):
    """The servo bus stopped answering (or kept answering garbage) for a whole retry budget."""


# --------------------------------------------------------------------------------------------------
# The arm
# --------------------------------------------------------------------------------------------------
class SerialArm(Robot):
    """A servo-bus arm as a :class:`Robot` (action mode ``joint_position``; observes ``joint_pos``,
    ``joint_vel``).

    Args:
        config: The arm's :class:`SerialArmConfig`.
    """

    def __init__(self, config: SerialArmConfig) -> None:
        self.config = config
        self.servo = config.servo_model
        low = np.array([config.joint_limits[j][0] for j in config.joint_names])
        high = np.array([config.joint_limits[j][1] for j in config.joint_names])
        n = len(config.ids)
        self._spec = RobotSpec(
            name=config.name,
            action_mode="joint_position",
            action_names=config.joint_names,
            action_low=low,
            action_high=high,
            joint_names=config.joint_names,
            joint_low=low,
            joint_high=high,
            max_joint_velocity=np.asarray(config.max_velocity),
            control_hz=config.control_hz,
            obs_shapes={"joint_pos": (n,), "joint_vel": (n,)},
            obs_dtypes={"joint_pos": "float64", "joint_vel": "float64"},
        )
        self.bus_stats = {
            "transactions": 0,
            "retries": 0,
            "timeout": 0,
            "corrupt": 0,
            "io": 0,
            "late": 0,
            "unmatched": 0,
            "hold_failures": 0,
        }
        """Counters since construction: completed transactions, retries, failures by kind, timeouts whose
        reply turned up late (discarded), replies dropped for another id or length, failed holds."""
        self.calibration: dict[str, MotorCalibration] | None = None
        self._bus: SdkBus | None = None
        self._torque_on = False
        self._last_ticks: np.ndarray | None = None
        self._observes = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> SerialArm:
        """Build from a plain dict (a robot config file's contents), see
        :meth:`~gipo_robot.hardware.serial_config.SerialArmConfig.from_dict`.

        Raises:
            ValueError: unknown or missing keys, or a bad value; the message names ``source`` and the key.
        """
        return cls(SerialArmConfig.from_dict(cfg, source))

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    # ---------------------------------------------------------------------------------- transactions
    def _transact(self, what: str, fn: Callable[[], T], retries: int | None = None) -> T:
        """Run one bus transaction, retrying timeouts/corruption up to the budget; :class:`BusError` after.

        Every failed attempt is followed by a drain of what is still on its way (see the module doc).
        """
        if self._bus is None:
            raise RobotError(f"{self.config.name}: not connected")
        budget = self.config.retries if retries is None else retries
        last: CommError | None = None
        late = 0
        for attempt in range(budget + 1):
            if attempt:
                self.bus_stats["retries"] += 1
            try:
                result = fn()
            except CommError as exc:
                self.bus_stats[exc.kind] += 1
                last = exc
                if self._bus.recover(exc.kind) and exc.kind == "timeout":
                    late += 1
                    self.bus_stats["late"] += 1
                continue
            self.bus_stats["transactions"] += 1
            return result
        hint = "the bus is unplugged, unpowered or too noisy"
        if late:
            hint = (
                f"{late} of the replies arrived after timeout_s = {self.config.timeout_s} s and were "
                "discarded: the bus answers slower than that; raise timeout_s"
            )
        raise BusError(
            f"{self.config.port}: {what} failed {budget + 1} time(s) in a row (last: {last}); {hint}"
        )

    def _register(self, name: str) -> sp.Register:
        return self.servo.register(name)

    def _sync_read(
        self, names: Sequence[str], retries: int | None = None, *, check: bool = True
    ) -> dict[str, np.ndarray]:
        """Registers ``names`` of every servo (one sync read); ``check``: raise on status error bits."""
        regs = [self._register(n) for n in names]
        start = min(r.address for r in regs)
        size = max(r.address + r.size for r in regs) - start
        what = f"sync read of {', '.join(names)}"
        raw = self._transact(what, lambda: self._bus.sync_read(start, size, self.config.ids), retries)
        if check:
            self._check_status({i: raw[i][1] for i in self.config.ids}, what)
        return {
            name: np.array(
                [
                    reg.decode(raw[i][0][reg.address - start : reg.address - start + reg.size])
                    for i in self.config.ids
                ],
                dtype=np.int64,
            )
            for name, reg in zip(names, regs, strict=True)
        }

    def _sync_write(self, name: str, values: Sequence[int], retries: int | None = None) -> None:
        reg = self._register(name)
        data = {i: reg.encode(int(v)) for i, v in zip(self.config.ids, values, strict=True)}
        self._transact(
            f"sync write of {name}", lambda: self._bus.sync_write(reg.address, reg.size, data), retries
        )

    def _write(self, servo_id: int, name: str, value: int) -> None:
        reg = self._register(name)
        what = f"write of {name} = {value}"
        error = self._transact(
            f"{what} to id {servo_id}", lambda: self._bus.write(servo_id, reg.address, reg.encode(value))
        )
        self._check_status({servo_id: error}, what)

    def _read(self, servo_id: int, name: str, *, check: bool = True) -> int:
        reg = self._register(name)
        what = f"read of {name}"
        data, error = self._transact(
            f"{what} from id {servo_id}", lambda: self._bus.read(servo_id, reg.address, reg.size)
        )
        if check:
            self._check_status({servo_id: error}, what)
        return reg.decode(data)

    # ---------------------------------------------------------------------------------- servo faults
    def _check_status(self, errors: Mapping[int, int], what: str) -> None:
        """Raise for the status error bytes of one transaction (``servo id -> error byte``).

        Raises:
            RobotError: a Dynamixel servo refused the instruction (an error number in bits 0-6).
            ServoFaultError: hardware error conditions (see the module doc).
        """
        protocol, port = self.config.protocol, self.config.port
        if protocol == "dynamixel":
            for servo_id, error in errors.items():
                if error & 0x7F:
                    raise RobotError(
                        f"{port}: servo id {servo_id} refused the {what}: "
                        f"{sp.describe_error(protocol, error)}"
                    )
            alerts = [i for i, error in errors.items() if error & sp.DXL_ERROR_ALERT]
            bits = {i: self._read(i, "hardware_error_status", check=False) for i in alerts}
        else:
            bits = {i: error for i, error in errors.items() if error}
        if bits:
            faults = {i: sp.hardware_error_names(protocol, b) or ("hardware alert",) for i, b in bits.items()}
            raise self._fault(faults)

    def _fault(
        self, faults: Mapping[int, tuple[str, ...]], limp: Sequence[int] | None = None
    ) -> ServoFaultError:
        """The :class:`ServoFaultError` for ``faults``; with torque on, reads the torque switches when
        ``limp`` is None."""
        if limp is None and not self._torque_on:
            limp = []
        elif limp is None:
            try:
                torque = self._sync_read(["torque_enable"], retries=1, check=False)["torque_enable"]
                limp = [i for i, on in zip(self.config.ids, torque, strict=True) if not on]
            except RobotError:
                limp = []
        joints = dict(zip(self.config.ids, self.config.joint_names, strict=True))
        arm = f"{self.config.name} on {self.config.port}"
        return servo_fault(arm, self.config.protocol, joints, faults, limp, holding=self._torque_on)

    def _check_health(self) -> None:
        """Read every servo's torque switch (Dynamixel: and Hardware Error Status, the next register but
        five); raise :class:`ServoFaultError` for one that is off or reports a condition."""
        names = ["torque_enable"]
        if self.config.protocol == "dynamixel":
            names.append("hardware_error_status")
        values = self._sync_read(names)
        limp = [i for i, on in zip(self.config.ids, values["torque_enable"], strict=True) if not on]
        faults = {}
        if "hardware_error_status" in values:
            faults = {
                i: sp.hardware_error_names("dynamixel", int(b))
                for i, b in zip(self.config.ids, values["hardware_error_status"], strict=True)
                if b
            }
        if limp or faults:
            raise self._fault(faults, limp)

    # ---------------------------------------------------------------------------------- connection
    def _connect(self) -> None:
        cfg = self.config
        bus = SdkBus(cfg.protocol, cfg.port, cfg.baudrate, cfg.timeout_s, self.bus_stats)
        try:
            bus.open()
        except RobotError:
            raise
        except Exception as exc:
            raise RobotError(
                f"cannot open serial port {cfg.port!r} for {cfg.name}: {exc}. "
                f"Is the arm plugged in and is this its port? Ports present: {list_ports()}"
            ) from exc
        self._bus = bus
        self._torque_on = False
        try:
            self._check_models()
            self._sync_read(["torque_enable"])  # a servo that reports an error is refused before any write
            if cfg.calibration is not None and Path(cfg.calibration).is_file():
                self._apply_calibration(load_calibration(cfg.calibration))
        except BaseException:
            self._bus = None
            bus.close()
            raise

    def _check_models(self) -> None:
        """Ping every servo and compare its model number, before anything is written."""
        cfg, expected = self.config, self.servo
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            try:
                number = self._transact(f"ping of id {servo_id}", lambda i=servo_id: self._bus.ping(i))
            except BusError as exc:
                raise RobotError(
                    f"{cfg.port}: no reply from servo id {servo_id} (joint {joint!r}, {cfg.protocol} at "
                    f"{cfg.baudrate} baud): check power, wiring, the id and the port ({exc})"
                ) from exc
            if number != expected.model_number:
                raise RobotError(
                    f"{cfg.port}: servo id {servo_id} (joint {joint!r}) reports model number {number} "
                    f"({sp.model_name_for_number(number)}), but the config expects {expected.name} "
                    f"({expected.model_number}); refusing to drive it"
                )

    def _disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except Exception as exc:
                log.warning("%s: closing %s failed: %s", self.config.name, self.config.port, exc)

    # ---------------------------------------------------------------------------------- calibration
    def _cal_for(self, joint: str) -> MotorCalibration | None:
        return None if self.calibration is None else self.calibration[joint]

    def _ticks_to_rad(self, ticks: np.ndarray) -> np.ndarray:
        res = self.servo.resolution
        return np.array(
            [
                ticks_to_rad(float(t), res, getattr(self._cal_for(j), "drive_mode", 0))
                for t, j in zip(ticks, self.config.joint_names, strict=True)
            ]
        )

    def _rad_to_ticks(self, rad: np.ndarray) -> np.ndarray:
        res = self.servo.resolution
        out = []
        for q, joint in zip(rad, self.config.joint_names, strict=True):
            cal = self._cal_for(joint)
            ticks = rad_to_ticks(float(q), res, getattr(cal, "drive_mode", 0))
            if cal is not None:
                ticks = min(max(ticks, cal.range_min), cal.range_max)
            out.append(min(max(ticks, 0), res - 1) if self.config.protocol == "feetech" else ticks)
        return np.array(out, dtype=np.int64)

    def _set_eeprom(self, per_id: Mapping[int, Mapping[str, int]]) -> None:
        """Write EEPROM registers (torque must be off on Dynamixel; Feetech needs its lock opened)."""
        self._torque(False)
        feetech = self.config.protocol == "feetech"
        for servo_id, values in per_id.items():
            if feetech:
                self._write(servo_id, "lock", 0)
            for name, value in values.items():
                self._write(servo_id, name, value)
            if feetech:
                self._write(servo_id, "lock", 1)

    def _apply_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        """Check a loaded calibration against the config and write it where the servos differ."""
        cfg, source = self.config, self.config.calibration
        missing = [j for j in cfg.joint_names if j not in calibration]
        if missing:
            raise RobotError(f"calibration file {source} has no entry for joint(s) {missing}")
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            if calibration[joint].id != servo_id:
                raise RobotError(
                    f"calibration file {source}: joint {joint!r} has id {calibration[joint].id}, "
                    f"config says {servo_id}"
                )
        self.calibration = {j: calibration[j] for j in cfg.joint_names}
        for joint in cfg.joint_names:  # the software limits must fit in the calibrated range
            cal, (low, high) = self.calibration[joint], cfg.joint_limits[joint]
            ends = sorted(rad_to_ticks(v, self.servo.resolution, cal.drive_mode) for v in (low, high))
            if ends[0] < cal.range_min - 1 or ends[1] > cal.range_max + 1:
                raise RobotError(
                    f"calibration file {source}: joint {joint!r} range "
                    f"[{cal.range_min}, {cal.range_max}] ticks "
                    f"does not cover joint_limits {list(cfg.joint_limits[joint])} rad = {ends} ticks"
                )
        changes: dict[int, dict[str, int]] = {}
        for servo_id, joint in zip(cfg.ids, cfg.joint_names, strict=True):
            cal = self.calibration[joint]
            wanted = {
                "homing_offset": cal.homing_offset,
                "min_position_limit": cal.range_min,
                "max_position_limit": cal.range_max,
            }
            diff = {k: v for k, v in wanted.items() if self._read(servo_id, k) != v}
            if diff:
                changes[servo_id] = diff
        if changes:
            log.info("%s: writing calibration to servo(s) %s", cfg.name, sorted(changes))
            self._set_eeprom(changes)

    def calibrate(self, path: str | Path | None = None) -> dict[str, MotorCalibration]:
        """Zero-pose calibration: call with the arm held in its zero pose (the pose that should read 0 rad).

        Switches torque off, sets each servo's homing offset so that it reports the middle of its turn
        (``resolution / 2``) there, writes each joint's ``joint_limits`` (in ticks) as the servo's
        position limits, and saves the calibration as JSON.

        Args:
            path: Where to save (default: ``config.calibration``; None for neither saves nothing).

        Returns:
            Joint name -> :class:`~gipo_robot.hardware.calibration.MotorCalibration`.
        """
        self._require_connected()
        cfg, res = self.config, self.servo.resolution
        self._set_eeprom({i: {"homing_offset": 0} for i in cfg.ids})
        raw = self._sync_read(["present_position"])["present_position"]
        calibration = {}
        for servo_id, joint, ticks in zip(cfg.ids, cfg.joint_names, raw, strict=True):
            offset = self.servo.homing_sign * (res // 2 - int(ticks))
            if abs(offset) > self.servo.homing_limit:
                raise RobotError(
                    f"{cfg.port}: servo id {servo_id} (joint {joint!r}) is {offset} ticks off its middle, "
                    f"more than the homing offset can hold ({self.servo.homing_limit}); re-mount its horn"
                )
            low, high = (rad_to_ticks(v, res) for v in cfg.joint_limits[joint])
            calibration[joint] = MotorCalibration(
                id=servo_id,
                drive_mode=0,
                homing_offset=offset,
                range_min=max(low, 0),
                range_max=min(high, res - 1),
            )
        self._set_eeprom(
            {
                c.id: {
                    "homing_offset": c.homing_offset,
                    "min_position_limit": c.range_min,
                    "max_position_limit": c.range_max,
                }
                for c in calibration.values()
            }
        )
        self.calibration = calibration
        target = path if path is not None else cfg.calibration
        if target is not None:
            save_calibration(target, calibration)
        return calibration

    def _require_calibrated(self) -> None:
        if self.config.calibration is not None and self.calibration is None:
            raise RobotError(
                f"{self.config.name}: calibration file {self.config.calibration} does not exist; "
                "hold the arm in its zero pose and run calibrate() first"
            )

    # ---------------------------------------------------------------------------------- robot
    def read_positions(self) -> np.ndarray:
        """Present joint positions (J,) rad; works torque-off (leader arm)."""
        self._require_connected()
        ticks = self._sync_read(["present_position"])["present_position"]
        self._last_ticks = ticks
        return self._ticks_to_rad(ticks)

    def observe(self) -> dict[str, np.ndarray]:
        """``joint_pos`` (J,) rad and ``joint_vel`` (J,) rad/s, from one sync read."""
        self._require_connected()
        values = self._sync_read(["present_position", "present_velocity"])
        self._last_ticks = values["present_position"]
        self._observes += 1
        every = self.config.health_check_every
        if self._torque_on and every and self._observes % every == 0:
            self._check_health()
        sign = np.array(
            [-1.0 if getattr(self._cal_for(j), "drive_mode", 0) else 1.0 for j in self.config.joint_names]
        )
        return {
            "joint_pos": self._ticks_to_rad(values["present_position"]),
            "joint_vel": sign * values["present_velocity"] * self.servo.velocity_unit,
        }

    def torque(self, enabled: bool) -> None:
        """Switch every servo's torque on (holding where it is: goal = present first) or off (limp)."""
        self._require_connected()
        self._torque(enabled)

    def _torque(self, enabled: bool) -> None:
        if enabled:
            ticks = self._sync_read(["present_position"])["present_position"]
            self._sync_write("goal_position", ticks)
        self._sync_write("torque_enable", [int(enabled)] * len(self.config.ids))
        self._torque_on = bool(enabled)

    def act(self, action: np.ndarray) -> np.ndarray:
        """Send normalised joint targets (J,) in [-1, 1]; returns the normalised targets actually sent
        (clipped to [-1, 1], rounded to whole ticks, clamped into the calibrated range)."""
        self._require_connected()
        self._require_calibrated()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self._spec.action_dim,):
            raise ValueError(
                f"{self.config.name}: action must have shape ({self._spec.action_dim},), got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            bad = [j for j, a in zip(self.config.joint_names, action, strict=True) if not np.isfinite(a)]
            raise ValueError(f"{self.config.name}: action is not finite for joint(s) {bad}")
        if not self._torque_on:
            self.torque(True)
        ticks = self._rad_to_ticks(self._spec.to_physical(np.clip(action, -1.0, 1.0)))
        self._sync_write("goal_position", ticks)
        return self._spec.to_normalized(self._ticks_to_rad(ticks))

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Torque on, holding; then move to ``config.home`` (if set) at half the velocity limit.

        ``seed`` is unused (a real arm has no randomness to seed).
        """
        self._require_connected()
        self._require_calibrated()
        self.torque(True)
        if self.config.home is not None:
            self.move_to(np.asarray(self.config.home), speed_fraction=0.5)
        return self.observe()

    def move_to(
        self, target: np.ndarray, *, speed_fraction: float = 0.5, settle_s: float = 0.5
    ) -> np.ndarray:
        """Blocking move to ``target`` (J,) rad along a straight line in joint space, at ``speed_fraction`` of
        the velocity limits, paced at ``control_hz``. Returns the joint positions at the end (rad)."""
        self._require_connected()
        target = np.clip(np.asarray(target, dtype=np.float64), self._spec.joint_low, self._spec.joint_high)
        start = self.read_positions()
        vmax = speed_fraction * self._spec.max_joint_velocity
        duration = float(np.max(np.abs(target - start) / vmax))
        steps = max(1, math.ceil(duration * self.config.control_hz))
        if not self._torque_on:
            self.torque(True)
        t0 = time.monotonic()
        for k in range(1, steps + 1):
            waypoint = start + (target - start) * k / steps
            self._sync_write("goal_position", self._rad_to_ticks(waypoint))
            time.sleep(max(0.0, t0 + k * self._spec.period - time.monotonic()))
        deadline = time.monotonic() + settle_s
        position = self.read_positions()
        while time.monotonic() < deadline and np.max(np.abs(position - target)) > 0.02:
            time.sleep(self._spec.period)
            position = self.read_positions()
        return position

    def hold(self) -> None:
        """Keep the arm where it is: goal = present position (or the last one read). Never raises; with the
        bus gone it gives up after one retry per transaction."""
        if self._bus is None:
            return
        try:
            try:
                ticks = self._sync_read(["present_position"], retries=1, check=False)["present_position"]
            except RobotError:
                ticks = self._last_ticks
            if ticks is not None and self._torque_on:
                self._sync_write("goal_position", ticks, retries=1)
        except Exception as exc:
            self.bus_stats["hold_failures"] += 1
            log.warning("%s: hold failed: %s", self.config.name, exc)
