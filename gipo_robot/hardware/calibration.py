"""Per-joint servo calibration, saved as JSON in LeRobot's layout.

A calibration file maps each joint name to LeRobot's ``MotorCalibration`` fields::

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -112, "range_min": 1024, "range_max": 3072},
     ...}

- ``homing_offset`` (ticks) is written to the servo's Homing Offset register, so that the servo reports
  the middle of its turn (``resolution / 2`` = 2048 ticks) in the arm's zero pose;
- ``range_min``/``range_max`` (ticks, in the servo's reported frame, offset applied) are written to its
  Min/Max Position Limit registers, a backstop beneath the software joint limits;
- ``drive_mode`` 1 flips the joint's direction in software (rad = -(ticks - 2048) * 2 pi / 4096).

With a calibration, ``rad = sign * (present_ticks - resolution / 2) * 2 pi / resolution`` where sign is
-1 for drive mode 1. The same file works with LeRobot's Feetech/Dynamixel buses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


@dataclasses.dataclass(frozen=True)
class MotorCalibration:
    """One joint's calibration (LeRobot's ``MotorCalibration`` fields); integers in ticks."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"MotorCalibration.{name} must be an integer, got {value!r}")
        if self.drive_mode not in (0, 1):
            raise ValueError(f"MotorCalibration.drive_mode must be 0 or 1, got {self.drive_mode}")
        if self.range_max <= self.range_min:
            raise ValueError(
                f"MotorCalibration.range_max ({self.range_max}) must exceed range_min ({self.range_min})"
            )


def ticks_to_rad(ticks: float, resolution: int, drive_mode: int = 0) -> float:
    """Reported servo position (ticks) -> joint angle (rad); 0 rad is the middle of the turn."""
    sign = -1.0 if drive_mode else 1.0
    return sign * (ticks - resolution // 2) * 2.0 * math.pi / resolution


def rad_to_ticks(rad: float, resolution: int, drive_mode: int = 0) -> int:
    """Joint angle (rad) -> servo position (ticks), rounded to the nearest tick."""
    sign = -1.0 if drive_mode else 1.0
    return round(sign * rad * resolution / (2.0 * math.pi)) + resolution // 2


def save_calibration(path: str | os.PathLike, calibration: Mapping[str, MotorCalibration]) -> Path:
    """Write ``{joint: {id, drive_mode, homing_offset, range_min, range_max}}`` as JSON (atomically).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {name: dataclasses.asdict(cal) for name, cal in calibration.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_calibration(path: str | os.PathLike) -> dict[str, MotorCalibration]:
    """Read a calibration file written by :func:`save_calibration` (or by LeRobot).

    Raises:
        FileNotFoundError: no such file (the message names it).
        ValueError: not JSON, or a joint's entry is missing a field / has a bad value; the message
            names the file, the joint and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file {path} does not exist; run the arm's calibrate() first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"calibration file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ValueError(f"calibration file {path} must hold a non-empty object {{joint: {{...}}}}")
    out: dict[str, MotorCalibration] = {}
    for joint, entry in data.items():
        if not isinstance(entry, dict):
            raise ValueError(f"calibration file {path}: joint {joint!r} must map to an object")
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise ValueError(f"calibration file {path}: joint {joint!r} misses field(s) {missing}")
        try:
            out[joint] = MotorCalibration(**{f: entry[f] for f in FIELDS})
        except ValueError as exc:
            raise ValueError(f"calibration file {path}: joint {joint!r}: {exc}") from exc
    return out
