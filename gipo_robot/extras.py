"""Optional dependencies: which pip extra installs a missing module, and the message that says so.

The core (store, objectives, policies, learner, hardware layer, teleop) installs anywhere LeRobot does:
Python 3.11-3.13, numpy 1.26 or 2.x. What needs more is an extra: the robosuite simulator (``[sim]``, which
holds numpy below 2), LeRobot (``[lerobot]``, Python >= 3.12), ROS (``[ros]``), Ray (``[ray]``), the
SpaceMouse (``[teleop]``). A command that reaches a missing one fails with :func:`install_hint`'s message.
"""

from __future__ import annotations

__all__ = ["EXTRA_OF", "install_hint"]

#: Top-level module -> the extra that installs it.
EXTRA_OF = {
    "robosuite": "sim",
    "mink": "sim",
    "numba": "sim",
    "lerobot": "lerobot",
    "roslibpy": "ros",
    "websockets": "ros",
    "ray": "ray",
    "hid": "teleop",
}

WHAT = {
    "sim": "the robosuite simulator",
    "lerobot": "LeRobot (Python >= 3.12)",
    "ros": "ROS through rosbridge",
    "ray": "Ray",
    "teleop": "the SpaceMouse",
}


def install_hint(err: BaseException) -> str | None:
    """The fix for an ImportError of an optional module (``None`` when ``err`` is not one): which extra."""
    name = getattr(err, "name", None)
    if not isinstance(err, ImportError) or not name:
        return None
    extra = EXTRA_OF.get(name.split(".")[0])
    if extra is None:
        return None
    return (
        f"module {name!r} is not installed: this needs {WHAT[extra]}, "
        f"which the [{extra}] extra installs: pip install 'gipo-robot[{extra}]'"
    )
