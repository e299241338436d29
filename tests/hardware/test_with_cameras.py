"""Cameras attached to a robot through its config: a video file (conftest's ``video``) as the camera source.

The camera asks for 32x24, so the 64x48 frames arrive resized to (24, 32, 3); pure blue in BGR arrives as
RGB (0, 0, 255), within MJPG's few levels.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gipo_robot.hardware.cameras import OpenCVCamera
from gipo_robot.hardware.config import RobotConfigError, load_robot
from gipo_robot.hardware.robot import Robot, RobotError, RobotSpec
from gipo_robot.hardware.with_cameras import RobotWithCameras

pytest.importorskip("cv2")


def _wrist(source: str, **extra) -> dict:
    return {"name": "wrist", "source": source, "width": 32, "height": 24, **extra}


@pytest.fixture(scope="module")
def bus():
    pytest.importorskip("scservo_sdk")
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus

    with VirtualServoBus("feetech") as bus:
        yield bus


def test_a_servo_arm_config_with_a_camera_observes_its_frames(bus, video, tmp_path):
    path = tmp_path / "arm.json"
    path.write_text(json.dumps({**bus.robot_config(), "cameras": [_wrist(video, fps=60.0, loop=True)]}))
    robot = load_robot(path)
    assert isinstance(robot, RobotWithCameras)
    # the spec lists the camera before anything connects
    assert robot.spec.cameras == ("wrist",)
    assert robot.spec.obs_shapes["wrist_image"] == (24, 32, 3)
    assert robot.spec.obs_dtypes["wrist_image"] == "uint8"
    assert robot.spec.obs_shapes["joint_pos"] == (6,)  # the arm's own observations stay
    (camera,) = robot.cameras
    with robot:
        first = robot.reset()
        assert set(first) == {"joint_pos", "joint_vel", "wrist_image"}
        time.sleep(0.2)  # at 60 fps, ~12 more frames
        obs = robot.observe()
        image = obs["wrist_image"]
        assert image.shape == (24, 32, 3) and image.dtype == np.uint8
        assert image[20, 20, 2] > 240 and image[20, 20, 0] < 15
        assert camera.frames_grabbed > 1
        sent = robot.act(robot.spec.to_normalized(obs["joint_pos"]))
        assert sent.shape == (6,)
    # disconnect released the camera and the arm
    assert not camera.is_connected and not robot.robot.is_connected and not robot.is_connected


@pytest.mark.parametrize(
    ("source", "error"),
    [("missing.avi", "no such file or device"), ("junk.avi", "OpenCV cannot open source")],
)
def test_a_missing_or_broken_camera_is_a_robot_error_naming_it(bus, tmp_path, source, error):
    (tmp_path / "junk.avi").write_text("not a video")
    path = tmp_path / "arm.json"
    path.write_text(json.dumps({**bus.robot_config(), "cameras": [_wrist(str(tmp_path / source))]}))
    robot = load_robot(path)
    with pytest.raises(RobotError, match=rf"camera 'wrist': {error}"):
        robot.connect()
    # nothing is left half-connected: the arm was released with the camera
    assert not robot.is_connected and not robot.robot.is_connected


def test_camera_config_errors_name_the_file_the_camera_and_the_field(tmp_path):
    ros = {"type": "ros", "joint_names": ["a"], "joint_low": [-1.0], "joint_high": [1.0]}
    toml = tmp_path / "arm.toml"
    toml.write_text(
        'type = "ros"\njoint_names = ["a"]\njoint_low = [-1.0]\njoint_high = [1.0]\n'
        '[[cameras]]\nname = "wrist"\nsource = 0\nwidth = 32\nheight = 24\n'
    )
    assert load_robot(toml).spec.obs_shapes["wrist_image"] == (24, 32, 3)  # TOML tables work too
    path = tmp_path / "arm.json"
    wrist = {"name": "wrist", "source": 0, "width": 32, "height": 24}
    cases = [
        ({"height": None}, r"arm\.json: cameras\[0\] \('wrist'\): missing key\(s\) \['height'\]"),
        ({"zoom": 2}, r"cameras\[0\] \('wrist'\): unknown key\(s\) \['zoom'\]"),
        ({"source": -1}, r"cameras\[0\] \('wrist'\): source must be a device index >= 0"),
        ({"width": 0}, r"cameras\[0\] \('wrist'\): width must be a positive int"),
        ({"name": "wrist cam"}, r"cameras\[0\] \('wrist cam'\): name must start with a letter"),
        ({"fps": 0}, r"cameras\[0\] \('wrist'\): fps must be a number > 0"),
    ]
    for change, message in cases:
        camera = {k: v for k, v in {**wrist, **change}.items() if v is not None}
        path.write_text(json.dumps({**ros, "cameras": [camera]}))
        with pytest.raises(RobotConfigError, match=message):
            load_robot(path)
    path.write_text(json.dumps({**ros, "cameras": [wrist, wrist]}))
    with pytest.raises(RobotConfigError, match=r"arm\.json: cameras: the name\(s\) \['wrist'\] appear more"):
        load_robot(path)
    path.write_text(json.dumps({**ros, "cameras": [wrist, "top"]}))
    with pytest.raises(RobotConfigError, match=r"arm\.json: 'cameras' must be a list of tables"):
        load_robot(path)


class HoldingArm(Robot):
    """A one-joint arm that records its lifecycle calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._spec = RobotSpec(
            name="arm", action_mode="joint_position", action_names=("j",), action_low=[-1], action_high=[1],
            joint_names=("j",), joint_low=[-1], joint_high=[1], max_joint_velocity=[1], control_hz=10.0,
            obs_shapes={"joint_pos": (1,), "top_image": (8, 8, 3)},
            obs_dtypes={"joint_pos": "float64", "top_image": "uint8"}, cameras=("top",),
        )  # fmt: skip

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _connect(self) -> None:
        self.calls.append("connect")

    def _disconnect(self) -> None:
        self.calls.append("disconnect")

    def hold(self) -> None:
        self.calls.append("hold")

    def reset(self, *, seed=None):
        return self.observe()

    def observe(self):
        return {"joint_pos": np.zeros(1), "top_image": np.zeros((8, 8, 3), np.uint8)}

    def act(self, action):
        return np.asarray(action)


def test_the_wrapper_holds_then_releases_cameras_then_the_arm(video):
    arm = HoldingArm()
    camera = OpenCVCamera(video, 16, 12, fps=60.0, loop=True, name="side")
    robot = RobotWithCameras(arm, [camera])
    assert robot.spec.cameras == ("top", "side")  # the robot's own cameras first
    assert robot.spec.obs_shapes["side_image"] == (12, 16, 3)
    with robot:
        assert robot.observe()["side_image"].shape == (12, 16, 3)
        assert camera.is_connected
    assert not camera.is_connected
    assert arm.calls == ["connect", "hold", "hold", "disconnect"]  # the wrapper's hold, then the arm's own
    with pytest.raises(ValueError, match=r"camera 'top': arm already observes top_image"):
        RobotWithCameras(HoldingArm(), [OpenCVCamera(video, 16, 12, name="top")])
    with pytest.raises(ValueError, match=r"camera 'side': width and height are needed"):
        RobotWithCameras(HoldingArm(), [OpenCVCamera(video, name="side")])


def test_record_stores_an_opencv_cameras_frames_with_the_arms_steps(bus, video, tmp_path):
    from gipo_robot.datasets import EpisodeStore
    from gipo_robot.loops.record import RecorderConfig, record
    from tests.hardware.test_virtual_camera import _swing

    path = tmp_path / "arm.json"
    path.write_text(json.dumps({**bus.robot_config(), "cameras": [_wrist(video, fps=60.0, loop=True)]}))
    robot = load_robot(path)
    out = tmp_path / "with_camera.zarr"
    result = record(robot, _swing(robot, 10), RecorderConfig(out=str(out), status=False))
    assert result.saved == [0], result
    ep = EpisodeStore.open(out).episode(0)
    frames = ep["obs.wrist_image"]
    assert frames.shape == (len(ep["action"]), 24, 32, 3) and frames.dtype == np.uint8
    assert (frames[:, 20, 20, 2] > 240).all()  # every step carries the camera's (blue) frame
