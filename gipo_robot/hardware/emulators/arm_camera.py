"""Rendered cameras for the virtual servo arm: its MuJoCo scene, published as frames a robot reads.

Legend: ``H``/``W`` frame height/width in pixels.

For rehearsing a camera policy without hardware. The emulator process (:func:`~gipo_robot.hardware.emulators.
virtual_bus.serve`) renders each configured camera of ``assets/virtual_arm.xml`` (``front``: the arm and
the cube from the front; ``wrist``: on the hand, looking along the jaw) offscreen from the arm's own
``MjData`` at the camera's frame rate, and publishes the frames through a memory-mapped file
(:mod:`gipo_robot.hardware.frame_channel`), stamped with ``time.monotonic()`` when rendered. The robot
side knows nothing of the emulator: the arm's robot config lists the camera with source
``"mujoco:<frame file>"`` and :class:`~gipo_robot.hardware.with_cameras.RobotWithCameras` reads it as it
reads an OpenCV camera, giving ``<name>_image`` observations. The emulator stays behind its wire (the
pty) and this file; the robot never touches its simulation.

Rendering uses ``MUJOCO_GL`` (EGL by default, software on a machine without a GPU) with the toolkit's fast
settings: no shadows (a shadow map cost ~200 ms a frame in software), reflections or multisampling;
~1-2 ms a frame for this small scene, inside the bus loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gipo_robot.hardware.frame_channel import SOURCE_PREFIX, FramePublisher, frames_dir

__all__ = ["SCENE_CAMERAS", "ArmCameras", "VirtualCamera", "camera_tables", "make_frames_dir"]

#: Cameras of ``assets/virtual_arm.xml``.
SCENE_CAMERAS: tuple[str, ...] = ("front", "wrist")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class VirtualCamera:
    """One rendered camera of the virtual arm."""

    camera: str = "front"
    """The scene's camera (:data:`SCENE_CAMERAS`)."""
    width: int = 96
    """Frame width in pixels."""
    height: int = 96
    """Frame height in pixels."""
    fps: float = 30.0
    """Frames rendered per second."""
    name: str | None = None
    """The observation's name (``<name>_image``); default: ``camera``."""

    def __post_init__(self) -> None:
        if self.camera not in SCENE_CAMERAS:
            raise ValueError(f"virtual arm camera {self.camera!r} unknown; known: {', '.join(SCENE_CAMERAS)}")
        for field in ("width", "height"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 640:
                raise ValueError(
                    f"virtual arm camera {self.camera!r}: {field} must be 8..640 pixels, got {value!r}"
                )
        if not (isinstance(self.fps, int | float) and 0 < self.fps <= 120):
            raise ValueError(f"virtual arm camera {self.camera!r}: fps must be in (0, 120], got {self.fps!r}")
        if self.name is None:
            object.__setattr__(self, "name", self.camera)
        elif not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"virtual arm camera name must start with a letter (letters, digits, _), got {self.name!r}"
            )

    @classmethod
    def parse(cls, text: str) -> VirtualCamera:
        """``"front"``, ``"front:128x96"`` or ``"wrist:64x64@15"`` (camera[:WxH][@fps])."""
        camera, _, rest = text.partition(":")
        size, _, fps = rest.partition("@") if rest else ("", "", "")
        if not rest and "@" in camera:
            camera, _, fps = camera.partition("@")
        try:
            width, height = (int(v) for v in size.lower().split("x")) if size else (96, 96)
            rate = float(fps) if fps else 30.0
        except ValueError as err:
            raise ValueError(
                f"camera {text!r}: expected camera[:WxH][@fps], e.g. front:96x96@30 ({err})"
            ) from None
        return cls(camera, width, height, rate)


def make_frames_dir() -> str:
    """A fresh directory for one emulator's frame files (in ``/dev/shm`` where it exists)."""
    return tempfile.mkdtemp(prefix="gipo-virtual-arm-", dir=frames_dir())


def frame_path(directory: str, camera: VirtualCamera) -> str:
    return os.path.join(directory, f"{camera.name}.frames")


def camera_tables(cameras: Sequence[VirtualCamera], directory: str | None) -> list[dict[str, Any]]:
    """The robot config's ``cameras`` tables that read these rendered cameras."""
    if cameras and directory is None:
        raise ValueError("a virtual arm with cameras needs its frames_dir")
    return [
        {
            "name": c.name,
            "source": SOURCE_PREFIX + frame_path(directory, c),
            "width": c.width,
            "height": c.height,
        }
        for c in cameras
    ]


def prepare_gl() -> None:
    """Default to EGL offscreen rendering; effective only before ``mujoco`` is first imported."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


class ArmCameras:
    """Renders ``cameras`` from ``arm`` (an :class:`~gipo_robot.hardware.emulators.servo_arm.EmulatedArm`)
    into frame files under ``directory``; call :meth:`poll` from the emulator's loop."""

    def __init__(self, arm: Any, cameras: Sequence[VirtualCamera], directory: str) -> None:
        import mujoco

        self._arm = arm
        self._cameras = tuple(cameras)
        model = arm.model
        model.vis.global_.offwidth = max([model.vis.global_.offwidth, *(c.width for c in cameras)])
        model.vis.global_.offheight = max([model.vis.global_.offheight, *(c.height for c in cameras)])
        model.vis.quality.offsamples = 0  # the toolkit's fast settings (gipo_robot.sim.fast_render)
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._renderers = [mujoco.Renderer(model, c.height, c.width) for c in self._cameras]
        for renderer in self._renderers:  # a 4096^2 shadow map costs ~200 ms a frame in software
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._publishers = [
            FramePublisher(frame_path(directory, c), c.height, c.width) for c in self._cameras
        ]
        self._due = [0.0] * len(self._cameras)
        self.poll(time.monotonic())  # a first frame before the port is announced

    def poll(self, now: float) -> None:
        """Render and publish every camera whose next frame is due at ``now`` (monotonic s)."""
        for i, camera in enumerate(self._cameras):
            if now < self._due[i]:
                continue
            renderer = self._renderers[i]
            renderer.update_scene(self._arm.data, camera=camera.camera)
            self._publishers[i].publish(renderer.render(), now)
            period = 1.0 / camera.fps
            self._due[i] = max(self._due[i] + period, now + period / 2)  # no burst after a stall

    def close(self) -> None:
        """Close the channels (readers see the emulator stopped), remove the files and the directory."""
        for publisher in self._publishers:
            publisher.close()
        for renderer in self._renderers:
            renderer.close()
        with contextlib.suppress(OSError):  # not empty: files that are not ours stay
            os.rmdir(self._directory)
