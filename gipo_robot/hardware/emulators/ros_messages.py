"""The ROS message types the virtual rosbridge knows, and rosbridge's check of a published message.

A schema is a nested value: a dict is a message (field -> schema), ``[x]`` a list of x, a Python type
(``int``, ``float``, ``str``) a scalar. :func:`conform` checks a JSON message against one the way
``rosbridge_server`` does: unknown fields and wrong types are errors naming the field's path, missing
fields are filled with defaults and reported.
"""

from __future__ import annotations

from typing import Any

from gipo_robot.hardware.ros_config import TIME_FIELDS

__all__ = ["conform", "message_schemas"]


def message_schemas(ros_version: int) -> dict[str, dict[str, Any]]:
    """ROS 1 type name -> field schema: a dict is a message, ``[x]`` a list of x, a Python type a scalar."""
    stamp = dict.fromkeys(TIME_FIELDS[ros_version], int)
    header: dict[str, Any] = {"stamp": stamp, "frame_id": str}
    if ros_version == 1:
        header = {"seq": int, **header}
    return {
        "sensor_msgs/JointState": {
            "header": header,
            "name": [str],
            "position": [float],
            "velocity": [float],
            "effort": [float],
        },
        "trajectory_msgs/JointTrajectory": {
            "header": header,
            "joint_names": [str],
            "points": [
                {
                    "positions": [float],
                    "velocities": [float],
                    "accelerations": [float],
                    "effort": [float],
                    "time_from_start": dict(stamp),
                }
            ],
        },
        "std_msgs/Float64MultiArray": {
            "layout": {"dim": [{"label": str, "size": int, "stride": int}], "data_offset": int},
            "data": [float],
        },
    }


def _default(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _default(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return []
    return schema()


def conform(value: Any, schema: Any, path: str, missing: list[str]) -> Any:
    """Check ``value`` against ``schema``; fill missing fields (their paths go to ``missing``).

    Raises:
        ValueError: an unknown field or a value of the wrong type, naming its path (e.g. ``msg.points[0]``).
    """
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - set(schema))
        if unknown:
            raise ValueError(f"{path} has unknown fields {unknown}; expected {sorted(schema)}")
        out = {}
        for key, sub in schema.items():
            if key in value:
                out[key] = conform(value[key], sub, f"{path}.{key}", missing)
            else:
                missing.append(f"{path}.{key}")
                out[key] = _default(sub)
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise ValueError(f"{path} must be a list, got {type(value).__name__}")
        return [conform(v, schema[0], f"{path}[{i}]", missing) for i, v in enumerate(value)]
    ok = isinstance(value, schema) and not isinstance(value, bool)
    if schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"{path} must be {schema.__name__}, got {value!r}")
    return float(value) if schema is float else value
