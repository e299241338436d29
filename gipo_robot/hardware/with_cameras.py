"""Cameras on any robot: :class:`RobotWithCameras` adds one ``<name>_image`` observation per camera.

Legend: ``H``/``W`` frame height/width in pixels.

A robot config lists its cameras under ``cameras``, one table each, and
:func:`~gipo_robot.hardware.config.load_robot` wraps the robot it builds when the key is there::

    type = "feetech"
    port = "/dev/ttyACM0"
    # ...

    [[cameras]]
    name = "wrist"        # the observation is "wrist_image"
    source = 0            # device index (/dev/video0), or "/dev/video2", "clip.avi", "rtsp://..."
    width = 640           # frame size in pixels: asked of the device, resized to when it delivers another
    height = 480
    fps = 30              # optional: asked of a device; a video file's playback rate

or, in JSON, ``"cameras": [{"name": "wrist", "source": 0, "width": 640, "height": 480}]``. A source
``"mujoco:<path>"`` is a camera an emulator renders from its MuJoCo scene and publishes to a frame file
(:mod:`gipo_robot.hardware.frame_channel`; ``gipo-robot virtual-arm --camera front`` writes such a
config), read through the same interface and stamped when rendered. Width and
height are required: the spec, and so the episode store's schema, knows every frame's shape before
anything connects. (For ``type = "sim"``, a list of *names* under ``cameras`` is the simulator's own
rendered cameras and goes to the backend; only tables are OpenCV cameras.)

Each camera grabs in its own thread (:class:`~gipo_robot.hardware.cameras.OpenCVCamera`);
:meth:`RobotWithCameras.observe` and :meth:`~RobotWithCameras.reset` return the wrapped robot's
observation plus the newest frame of each camera, an (H, W, 3) uint8 RGB image. Lifecycle: ``connect``
opens the robot, then the cameras, and waits for a first frame from each (a camera that cannot deliver one
disconnects everything and raises :class:`~gipo_robot.hardware.cameras.CameraError`, a
:class:`~gipo_robot.hardware.robot.RobotError` naming the camera); ``disconnect`` holds the arm, releases
the cameras, then disconnects the robot.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from gipo_robot.hardware.cameras import OpenCVCamera
from gipo_robot.hardware.frame_channel import SOURCE_PREFIX, SharedFrameCamera
from gipo_robot.hardware.robot import Robot, RobotSpec, TaskStatus

__all__ = ["CameraConfig", "RobotWithCameras", "camera_configs"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """One camera of a robot config's ``cameras`` list."""

    name: str
    """Camera name: letters, digits and ``_``, starting with a letter; the observation is ``<name>_image``."""
    source: int | str
    """OpenCV source: a device index, a device path, a video file or a stream URL."""
    width: int
    """Frame width in pixels (asked of a device; frames of another size are resized to it)."""
    height: int
    """Frame height in pixels."""
    fps: float | None = None
    """Frame rate asked of a device; for a video file, its playback rate (None: the file's own)."""
    loop: bool = False
    """For a video file: start over at its end (a rehearsal camera that never runs out)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name must start with a letter and hold only letters, digits and '_', got {self.name!r}"
            )
        is_index = isinstance(self.source, int) and not isinstance(self.source, bool) and self.source >= 0
        if not (is_index or (isinstance(self.source, str) and self.source)):
            raise ValueError(
                f"source must be a device index >= 0 or a device path, video file or URL, got {self.source!r}"
            )
        for field in ("width", "height"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field} must be a positive int (pixels), got {value!r}")
        fps_ok = isinstance(self.fps, int | float) and not isinstance(self.fps, bool) and self.fps > 0
        if self.fps is not None and not fps_ok:
            raise ValueError(f"fps must be a number > 0, got {self.fps!r}")
        if not isinstance(self.loop, bool):
            raise ValueError(f"loop must be true or false, got {self.loop!r}")

    def camera(self) -> OpenCVCamera | SharedFrameCamera:
        """The (not yet connected) camera this config describes."""
        if isinstance(self.source, str) and self.source.startswith(SOURCE_PREFIX):
            path = self.source[len(SOURCE_PREFIX) :]
            return SharedFrameCamera(path, self.width, self.height, name=self.name)
        return OpenCVCamera(self.source, self.width, self.height, self.fps, loop=self.loop, name=self.name)


def camera_configs(entries: Any, source: str) -> tuple[CameraConfig, ...]:
    """Parse a robot config's ``cameras`` list (tables, as read from JSON/TOML).

    Args:
        entries: The value of the ``cameras`` key.
        source: The config file (or spec string), named in errors.

    Raises:
        ValueError: not a list of tables, a missing/unknown key, a bad value or a repeated name; the
            message names ``source``, the entry (``cameras[i]``) and the key.
    """
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{source}: 'cameras' must be a list of tables (name, source, width, height, ...)")
    fields = {f.name: f for f in dataclasses.fields(CameraConfig)}
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    configs: list[CameraConfig] = []
    for i, entry in enumerate(entries):
        where = f"{source}: cameras[{i}]" + (f" ({entry['name']!r})" if "name" in entry else "")
        unknown = sorted(set(entry) - set(fields))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {list(fields)}")
        missing = [n for n in required if n not in entry]
        if missing:
            raise ValueError(
                f"{where}: missing key(s) {missing} (the frame size must be known before connecting)"
            )
        try:
            configs.append(CameraConfig(**entry))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
    names = [c.name for c in configs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{source}: cameras: the name(s) {repeated} appear more than once")
    return tuple(configs)


class RobotWithCameras(Robot):
    """A robot plus cameras: the same robot, with an ``<name>_image`` (H, W, 3) uint8 observation per camera.

    Args:
        robot: The robot to wrap (not yet connected; the wrapper connects it).
        cameras: Cameras with ``width`` and ``height`` set (the frame shape is part of the spec); their
            ``name`` names the observation.
        frame_timeout_s: How long ``connect`` waits for each camera's first frame, and ``observe`` for a
            frame when none has arrived yet, s.

    Raises:
        ValueError: a camera without width/height, a repeated camera name, or an ``<name>_image`` the
            robot already observes.
    """

    def __init__(
        self,
        robot: Robot,
        cameras: Sequence[OpenCVCamera | SharedFrameCamera],
        *,
        frame_timeout_s: float = 2.0,
    ) -> None:
        base = robot.spec
        names = [cam.name for cam in cameras]
        for cam in cameras:
            if cam.width is None or cam.height is None:
                raise ValueError(f"camera {cam.name!r}: width and height are needed (the spec has the shape)")
            if names.count(cam.name) > 1 or f"{cam.name}_image" in base.obs_shapes:
                raise ValueError(
                    f"camera {cam.name!r}: {base.name} already observes {cam.name}_image; rename the camera"
                )
        self.robot = robot
        self.cameras = tuple(cameras)
        self.frame_timeout_s = frame_timeout_s
        shapes = {f"{cam.name}_image": (cam.height, cam.width, 3) for cam in self.cameras}
        self._spec = dataclasses.replace(
            base,
            obs_shapes={**base.obs_shapes, **shapes},
            obs_dtypes={**base.obs_dtypes, **dict.fromkeys(shapes, "uint8")},
            cameras=(*base.cameras, *names),
        )

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _connect(self) -> None:
        self.robot.connect()
        try:
            for cam in self.cameras:
                cam.connect()
                cam.read_latest(self.frame_timeout_s)
        except BaseException:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        try:
            for cam in self.cameras:
                try:
                    cam.disconnect()
                except Exception as err:  # releasing a camera must not keep the arm connected
                    log.warning("%s: releasing camera %r failed: %s", self.spec.name, cam.name, err)
        finally:
            self.robot.disconnect()

    def close(self) -> None:
        """Disconnect, then close the wrapped robot (which frees what it owns, e.g. a simulator)."""
        self.disconnect()
        self.robot.close()

    def _with_frames(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(obs)
        for cam in self.cameras:
            out[f"{cam.name}_image"] = cam.read_latest(self.frame_timeout_s).image
        return out

    def reset(self, *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset the wrapped robot; its first observation plus each camera's newest frame."""
        self._require_connected()
        return self._with_frames(self.robot.reset(seed=seed))

    def observe(self) -> dict[str, np.ndarray]:
        """The wrapped robot's observation plus each camera's newest frame.

        Raises:
            CameraError: a camera stopped delivering frames (the message names it).
        """
        self._require_connected()
        return self._with_frames(self.robot.observe())

    def act(self, action: np.ndarray) -> np.ndarray:
        return self.robot.act(action)

    def task_status(self) -> TaskStatus | None:
        return self.robot.task_status()

    def hold(self) -> None:
        self.robot.hold()
