"""LeRobot's own arms (SO-100/SO-101, Koch, OMX followers) as gipo-robot robots: :class:`LeRobotArm`.

Legend: ``J`` number of motors on the arm's bus (one per joint, the gripper included); ticks are encoder
steps.

A robot config ``{"type": "lerobot", "robot": {"type": "so101_follower", "port": "/dev/ttyACM0", "id":
"my_arm"}}`` (:class:`~gipo_robot.hardware.lerobot_config.LeRobotArmConfig`) builds LeRobot's robot class
for that type, with the calibration file ``lerobot-calibrate`` wrote, and puts it behind gipo-robot's
:class:`~gipo_robot.hardware.robot.Robot`: LeRobot's driver (its ``FeetechMotorsBus`` or
``DynamixelMotorsBus`` over the vendor's SDK) moves the servos; this module maps its dicts onto
gipo-robot's features, converts units, and turns its failures into :class:`RobotError`. Like every robot a
user drives, it runs behind :class:`~gipo_robot.hardware.safety.SafetyGuard`.

**Features.** Observation ``joint_pos`` (J,) float64, rad (the gripper too: see
:mod:`~gipo_robot.hardware.lerobot_config` for the units of LeRobot's ``<motor>.pos`` values and their
conversion); each LeRobot camera ``<cam>`` (H, W, 3) becomes ``<cam>_image`` uint8. Action mode
``joint_position``: targets in rad, the normalised action's -1/+1 at the ends of each joint's calibrated
range. With ``units = "lerobot"`` (spec ``units == "lerobot"``) the arm speaks LeRobot's values instead, as
``lerobot-record`` stores them: observation ``state`` (J,) float32, LeRobot's ``<motor>.pos`` values in bus
order, each camera under LeRobot's name ``<cam>``, and the physical command (``spec.to_physical``) goes to
``send_action`` unchanged. Only arms whose LeRobot features are ``<motor>.pos`` on one motor bus
(``robot.bus``) are mapped.

**Connect.** LeRobot's ``connect`` would prompt (``input()``) when the servos' calibration registers
differ from the file; here the file is written to the servos without asking (what pressing ENTER at that
prompt does), and every goal is set to the present position before LeRobot's ``configure`` switches torque
on, so the arm holds where it is instead of jumping to a stale goal. A missing calibration file is an
error that says how to make one.

**Faults.** LeRobot raises ``ConnectionError`` (no reply, port closed), ``RuntimeError`` (a servo's status
error on a read or write) and ``OSError``/``serial`` errors (the adapter unplugged); each becomes a
:class:`RobotError` naming the arm, the port and what it was doing. LeRobot's sync reads ignore the error a
servo reports, so a servo in overload would go unnoticed; while torque is on, every ``health_check_every``
``observe`` reads each servo's torque switch and hardware error register (Feetech ``Status``, Dynamixel
``Hardware_Error_Status``) and raises :class:`~gipo_robot.hardware.servo_faults.ServoFaultError` for a
condition or a limp servo that a second reading confirms (LeRobot's SDK can take a late reply to an earlier
request for the answer on a loaded bus; a real fault persists). :meth:`LeRobotArm.hold` writes goal =
present (raw ticks) and never raises.
:meth:`~LeRobotArm.disconnect` leaves torque on, holding (gipo-robot's rule for every arm: a follower
switched limp would fall), whatever LeRobot's ``disable_torque_on_disconnect`` says.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gipo_robot.hardware import servo_protocol as sp
from gipo_robot.hardware.lerobot_config import JointUnits, LeRobotArmConfig, feature_names, make_lerobot
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec
from gipo_robot.hardware.servo_faults import servo_fault

__all__ = ["LeRobotArm", "LeRobotArmConfig", "lerobot_faults"]

log = logging.getLogger(__name__)

try:
    import termios

    _TERMIOS_ERROR: tuple[type[Exception], ...] = (termios.error,)
except ImportError:  # Windows
    _TERMIOS_ERROR = ()

#: The errors LeRobot's drivers raise for a failed transaction, a servo's error status or a lost port
#: (``DeviceNotConnectedError`` is a ``ConnectionError``, pyserial's ``SerialException`` an ``OSError``;
#: an unplugged USB adapter can also fail pyserial's ``flush`` with ``termios.error``, which is neither).
LEROBOT_FAULTS = (ConnectionError, OSError, RuntimeError, ValueError, *_TERMIOS_ERROR)

#: LeRobot control-table register holding a servo's hardware conditions -> the protocol naming its bits.
ERROR_REGISTERS = {"Status": "feetech", "Hardware_Error_Status": "dynamixel"}


@contextlib.contextmanager
def lerobot_faults(where: str, what: str) -> Iterator[None]:
    """Turn LeRobot's failures inside the block into a :class:`RobotError` ``"<where>: <what> failed: ..."``
    (a RobotError raised inside passes unchanged)."""
    try:
        yield
    except RobotError:
        raise
    except LEROBOT_FAULTS as err:
        text = " ".join(str(err).split()) or "no message"
        raise RobotError(f"{where}: {what} failed: {type(err).__name__}: {text}") from err


def motor_bus(device: Any, where: str) -> Any:
    """The LeRobot device's one serial motor bus (``device.bus``); ValueError for a device without one."""
    bus = getattr(device, "bus", None)
    if bus is None or not callable(getattr(bus, "sync_read", None)) or not hasattr(bus, "motors"):
        raise ValueError(
            f"{where}: LeRobot's {type(device).__name__} has no single motor bus ('bus'); gipo-robot maps "
            "position-controlled arms on one bus (so100/so101, koch, omx)"
        )
    return bus


def require_calibration(device: Any, kind: str, kind_type: str, where: str) -> None:
    """ValueError saying how to calibrate when LeRobot found no calibration file for ``device``, a
    ``kind`` (``robot``/``teleop``) of LeRobot type ``kind_type``."""
    if not device.calibration:
        raise ValueError(
            f"{where}: no LeRobot calibration file at {device.calibration_fpath}; calibrate the arm with "
            f"`lerobot-calibrate --{kind}.type={kind_type} --{kind}.port=PORT --{kind}.id={device.id}` "
            f"(or name the folder that holds {device.id}.json in {kind}.calibration_dir)"
        )


#: Seconds before the one retry of a port that would not open (a USB adapter still settling, a pty whose
#: other side is not ready yet): a port that stays shut fails the second time with the same error.
OPEN_RETRY_S = 0.5


def connect_calibrated(device: Any, bus: Any, where: str, *, hold: bool) -> None:
    """LeRobot's ``device.connect`` without its prompt: write the calibration file to servos that differ,
    set every goal to the present position (``hold``: torque then goes on where the arm is), then connect.
    A port that would not open (LeRobot's "Could not connect on port") is tried once more after
    :data:`OPEN_RETRY_S`; every other failure is final.

    Raises:
        RobotError: the port cannot be opened, a servo is missing or of another model, a transaction fails.
    """
    try:
        _connect_calibrated(device, bus, where, hold=hold)
    except RobotError as err:
        if not _port_would_not_open(err):
            raise
        log.warning("%s: %s; trying once more in %.1f s", where, err, OPEN_RETRY_S)
        release(device, bus, where)
        time.sleep(OPEN_RETRY_S)
        _connect_calibrated(device, bus, where, hold=hold)


def _port_would_not_open(err: RobotError) -> bool:
    cause = err.__cause__
    return isinstance(cause, ConnectionError) and "Could not connect on port" in str(cause)


def _connect_calibrated(device: Any, bus: Any, where: str, *, hold: bool) -> None:
    with lerobot_faults(where, f"connecting on {bus.port}"):
        bus.connect()  # LeRobot's handshake: ping every motor, check its model number (and firmware)
        try:
            if not bus.is_calibrated:
                log.info("%s: writing the calibration file %s to the servos", where, device.calibration_fpath)
                bus.disable_torque()
                bus.write_calibration(device.calibration)
            if hold:
                present = bus.sync_read("Present_Position", normalize=False, num_retry=2)
                bus.sync_write("Goal_Position", present, normalize=False)
        finally:
            bus.disconnect(disable_torque=False)
        device.connect(calibrate=False)  # cameras, and LeRobot's configure (torque on for a follower)


def release(device: Any, bus: Any, where: str) -> None:
    """Close the port leaving torque as it is, and the device's cameras; never raises."""
    try:
        if bus.is_connected:
            bus.port_handler.is_using = False  # a transaction cut short by an error leaves it set
            bus.disconnect(disable_torque=False)
    except Exception as err:  # the port may already be gone
        log.warning("%s: closing %s failed: %s", where, bus.port, err)
    for camera in getattr(device, "cameras", {}).values():
        with contextlib.suppress(Exception):
            if camera.is_connected:
                camera.disconnect()


class LeRobotArm(Robot):
    """A LeRobot robot as a :class:`Robot` (action mode ``joint_position``); see the module doc.

    Args:
        config: The gipo-robot side of the config.
        device: LeRobot's robot, built from ``config.robot`` (not connected, its calibration loaded).
        source: The config file, named in errors (default: the robot's name).

    Raises:
        ValueError: the robot is not a position-controlled arm on one bus, or has no calibration file.
    """

    def __init__(self, config: LeRobotArmConfig, device: Any, source: str | None = None) -> None:
        self.config = config
        self.device = device
        where = source or config.name
        self.bus = motor_bus(device, where)
        require_calibration(device, "robot", config.robot["type"], where)
        self.units = JointUnits.of_bus(self.bus, device.calibration, where)
        self.cameras = self._camera_shapes(where)
        speed = config.velocity_limits([m.model for m in self.bus.motors.values()])
        self._spec = self.units.spec(config.name, config.units, speed, config.control_hz, self.cameras)
        self._joints, self._image = feature_names(config.units)
        self._ids = {m.id: name for name, m in self.bus.motors.items()}
        self._torque_on = False
        self._observes = 0
        self.hold_failures = 0
        """Holds that failed (the bus gone); each is logged."""

    def _camera_shapes(self, where: str) -> dict[str, tuple[int, ...]]:
        """Camera name -> (H, W, 3) from LeRobot's observation features; other features are refused."""
        motors = {f"{name}.pos" for name in self.bus.motors}
        unmapped = sorted(set(self.device.action_features) - motors)
        cameras = {}
        for key, kind in self.device.observation_features.items():
            if key in motors:
                continue
            if isinstance(kind, tuple) and len(kind) == 3 and kind[2] == 3:
                cameras[key] = tuple(int(d) for d in kind)
            else:
                unmapped.append(key)
        if unmapped:
            raise ValueError(
                f"{where}: LeRobot's {type(self.device).__name__} has features {unmapped} that gipo-robot "
                "does not map (it maps '<motor>.pos' joints and RGB cameras)"
            )
        return cameras

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], source: str = "<dict>") -> LeRobotArm:
        """Build from a robot config file's contents (see the module doc).

        Raises:
            ValueError: LeRobot missing (naming the extra), an unknown LeRobot type, a bad field, a robot
                that is not a calibrated position-controlled arm; the message names ``source`` and the key.
        """
        config = LeRobotArmConfig.from_dict(cfg, source)
        return cls(config, make_lerobot("robot", config.robot, source), source)

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def _where(self) -> str:
        return f"{self.config.name} on {self.bus.port}"

    # ---------------------------------------------------------------------------------- connection
    def _connect(self) -> None:
        try:
            connect_calibrated(self.device, self.bus, self._where, hold=True)
            with lerobot_faults(self._where, "reading the torque switches"):
                torque = self.bus.sync_read("Torque_Enable", normalize=False, num_retry=2)
        except BaseException:
            release(self.device, self.bus, self._where)
            raise
        self._torque_on = all(torque.values())
        self._observes = 0

    def _disconnect(self) -> None:
        release(self.device, self.bus, self._where)

    # ---------------------------------------------------------------------------------- servo faults
    def _check_health(self) -> None:
        """Read every servo's torque switch and hardware error register; raise a
        :class:`~gipo_robot.hardware.servo_faults.ServoFaultError` for a limp servo or a condition that a
        second reading confirms (LeRobot's SDK can take a late reply to an earlier request for the answer,
        e.g. a torque switch's 1 for a Status byte, on a loaded bus: a real fault persists)."""
        limp, faults = self._read_health()
        if limp or faults:
            limp, faults = self._read_health()
        if limp or faults:
            protocol = ERROR_REGISTERS.get(self._error_register or "", "feetech")
            raise servo_fault(self._where, protocol, self._ids, faults, limp, holding=True)

    @property
    def _error_register(self) -> str | None:
        table = self.bus.model_ctrl_table[next(iter(self.bus.motors.values())).model]
        return next((name for name in ERROR_REGISTERS if name in table), None)

    def _read_health(self) -> tuple[list[int], dict[int, tuple[str, ...]]]:
        """(ids of servos whose torque is off, id -> the conditions it reports)."""
        bus, register = self.bus, self._error_register
        with lerobot_faults(self._where, "the servo health check"):
            torque = bus.sync_read("Torque_Enable", normalize=False)
            errors = bus.sync_read(register, normalize=False) if register else {}
        limp = [bus.motors[name].id for name, on in torque.items() if not on]
        protocol = ERROR_REGISTERS.get(register or "", "feetech")
        faults = {
            bus.motors[name].id: sp.hardware_error_names(protocol, int(bits))
            for name, bits in errors.items()
            if bits
        }
        return limp, faults

    # ---------------------------------------------------------------------------------- robot
    def observe(self) -> dict[str, np.ndarray]:
        """``joint_pos`` (J,) rad and each camera's ``<cam>_image``, from LeRobot's ``get_observation``
        (``units = "lerobot"``: ``state`` (J,) float32, LeRobot's values, and each camera as ``<cam>``)."""
        self._require_connected()
        with lerobot_faults(self._where, "reading the observation"):
            raw = self.device.get_observation()
        self._observes += 1
        every = self.config.health_check_every
        if self._torque_on and every and self._observes % every == 0:
            self._check_health()
        q = self.units.read(raw, self.config.units)
        obs = {self._joints: q.astype(np.float32) if self.config.units == "lerobot" else q}
        for camera in self.cameras:
            obs[self._image.format(camera)] = np.asarray(raw[camera], dtype=np.uint8)
        return obs

    def act(self, action: np.ndarray) -> np.ndarray:
        """Send normalised joint targets (J,) in [-1, 1] through LeRobot's ``send_action`` (as
        ``spec.to_physical`` gives them, converted to LeRobot's values; ``units = "lerobot"``: unchanged);
        returns the normalised targets LeRobot reports sent (after its ``max_relative_target`` cap, if
        configured)."""
        self._require_connected()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self._spec.action_dim,):
            raise ValueError(
                f"{self.config.name}: action must have shape ({self._spec.action_dim},), got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            bad = [j for j, a in zip(self.units.names, action, strict=True) if not np.isfinite(a)]
            raise ValueError(f"{self.config.name}: action is not finite for joint(s) {bad}")
        if not self._torque_on:
            self._torque(True)
        target = self._spec.to_physical(np.clip(action, -1.0, 1.0))
        with lerobot_faults(self._where, "sending the action"):
            sent = self.device.send_action(self.units.write(target, self.config.units))
        q = self.units.read(sent, self.config.units)
        return self._spec.to_normalized(np.where(np.isfinite(q), q, target))

    def _torque(self, enabled: bool) -> None:
        """Torque on (holding where the arm is: goal = present first) or off (limp) on every servo."""
        with lerobot_faults(self._where, f"switching torque {'on' if enabled else 'off'}"):
            if enabled:
                present = self.bus.sync_read("Present_Position", normalize=False, num_retry=2)
                self.bus.sync_write("Goal_Position", present, normalize=False)
                self.bus.enable_torque()
            else:
                self.bus.disable_torque()
        self._torque_on = enabled

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Torque on, holding where the arm is (a LeRobot arm has no home pose); returns the observation.

        ``seed`` is unused (a real arm has no randomness to seed).
        """
        self._require_connected()
        self._torque(True)
        return self.observe()

    def hold(self) -> None:
        """Keep the arm where it is: goal = present position, in raw ticks. Never raises; a failure (the bus
        gone) is logged and counted in :attr:`hold_failures`."""
        if not self.is_connected or not self.bus.is_connected:
            return
        try:
            self.bus.port_handler.is_using = False  # a transaction cut short by an error leaves it set
            present = self.bus.sync_read("Present_Position", normalize=False, num_retry=1)
            if self._torque_on:
                self.bus.sync_write("Goal_Position", present, normalize=False)
        except Exception as err:
            self.hold_failures += 1
            log.warning("%s: hold failed: %s", self._where, err)
