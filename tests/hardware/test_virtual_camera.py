"""Cameras through a frame file: the channel itself, and the virtual servo arm's rendered camera on a robot
that `record` stores and `deploy` feeds to a camera policy."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gipo_robot.hardware.cameras import CameraError
from gipo_robot.hardware.config import load_robot
from gipo_robot.hardware.frame_channel import FramePublisher, SharedFrameCamera
from gipo_robot.hardware.with_cameras import RobotWithCameras

SIZE = 32


def test_a_published_frame_is_read_whole_with_its_timestamp_and_index(tmp_path):
    path = tmp_path / "cam.frames"
    publisher = FramePublisher(path, 4, 6)
    camera = SharedFrameCamera(path, 6, 4, name="front")
    with camera:
        with pytest.raises(CameraError, match=r"'front': no frame within 0\.05 s"):
            camera.read_latest(timeout=0.05)  # nothing published yet
        image = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
        publisher.publish(image, timestamp=12.5)
        frame = camera.read_latest()
        assert np.array_equal(frame.image, image) and frame.timestamp == 12.5 and frame.index == 0
        with pytest.raises(CameraError, match="no frame newer than 0"):
            camera.read_new(0, timeout=0.05)  # never the same frame twice
        publisher.publish(image + 1)
        newer = camera.read_new(0)
        assert newer.index == 1 and np.array_equal(newer.image, image + 1)
        assert camera.frames_grabbed == 2
        publisher.close()
        with pytest.raises(CameraError, match=r"'front': the emulator publishing .* stopped"):
            camera.read_latest()
    assert not path.exists()


def test_a_frame_file_of_another_size_or_none_at_all_is_a_camera_error_naming_it(tmp_path):
    FramePublisher(tmp_path / "a.frames", 4, 6)
    with pytest.raises(
        CameraError, match="'front': the emulator renders 6x4 frames, the config asks for 8x8"
    ):
        SharedFrameCamera(tmp_path / "a.frames", 8, 8, name="front").connect()
    with pytest.raises(CameraError, match=r"'front': cannot open frame file .*is the emulator"):
        SharedFrameCamera(tmp_path / "missing.frames", 8, 8, name="front").connect()


@pytest.fixture(scope="module")
def bus():
    pytest.importorskip("scservo_sdk")
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus

    with VirtualServoBus("feetech", cameras=[{"camera": "front", "width": SIZE, "height": SIZE}]) as bus:
        yield bus


@pytest.fixture
def arm_config(bus, tmp_path):
    path = tmp_path / "arm.json"
    path.write_text(json.dumps(bus.robot_config()))
    return path


def test_the_virtual_arm_config_lists_its_rendered_camera_and_the_robot_observes_it(arm_config):
    robot = load_robot(arm_config)
    assert isinstance(robot, RobotWithCameras)
    assert robot.spec.obs_shapes["front_image"] == (SIZE, SIZE, 3) and robot.spec.cameras == ("front",)
    with robot:
        robot.reset()
        camera = robot.cameras[0]
        first = camera.read_latest()
        later = camera.read_new(first.index + 2)
        # rendered at ~30 fps in the emulator's process, stamped on the machine's one monotonic clock
        assert first.timestamp < later.timestamp <= time.monotonic()
        assert later.image.shape == (SIZE, SIZE, 3) and later.image.dtype == np.uint8


def _swing(robot, steps: int):
    """A scripted operator: swing the shoulder and elbow across half their range, then save."""
    from gipo_robot.teleop.devices import ScriptedDevice

    def make_episode(attempt, obs):
        start = robot.spec.to_normalized(obs["joint_pos"])
        target = start.copy()
        target[0], target[2] = 0.6, -0.5
        plan = iter([start + (target - start) * min(1.0, (k + 1) / (steps / 2)) for k in range(steps)])
        return (lambda: next(plan, None)), (lambda: True)

    return ScriptedDevice(make_episode, name="swing")


def test_record_stores_rendered_frames_that_change_as_the_arm_moves(arm_config, tmp_path):
    from gipo_robot.datasets import EpisodeStore
    from gipo_robot.loops.record import RecorderConfig, record

    robot = load_robot(arm_config)
    out = tmp_path / "rehearsal.zarr"
    result = record(robot, _swing(robot, 24), RecorderConfig(out=str(out), status=False))
    assert result.saved == [0], result
    ep = EpisodeStore.open(out).episode(0)
    frames = ep["obs.front_image"]
    assert frames.shape[1:] == (SIZE, SIZE, 3) and frames.dtype == np.uint8 and len(frames) >= 20
    joints = ep["obs.joint_pos"]
    assert abs(joints[-1, 0] - joints[0, 0]) > 0.3  # the arm swung
    moved = np.abs(frames[-1].astype(int) - frames[0]).mean()
    still = np.abs(frames[1].astype(int) - frames[0]).mean()
    assert moved > 1.0 and moved > 3 * still  # the camera saw it


def test_deploy_feeds_the_rendered_frames_to_a_camera_policy(arm_config, tmp_path):
    torch = pytest.importorskip("torch")
    from gipo_robot.loops.deploy import DeployConfig, deploy, open_deploy_store
    from gipo_robot.policies import GaussianPolicy, PolicyConfig

    robot = load_robot(arm_config)
    policy = GaussianPolicy(
        PolicyConfig(
            low_dim={"joint_pos": [6]},
            images={"front_image": [3, SIZE, SIZE]},
            action_dim=6,
            chunk=1,
            hidden=[8],
        )
    )
    seen = []
    mode = policy.mode

    def spy(batch):
        seen.append(batch["front_image"].clone())
        return mode(batch)

    policy.mode = spy
    with torch.no_grad():
        policy.mean_head.weight.zero_()  # hold still: the mean is the bias, zero = mid-range
    store = open_deploy_store(tmp_path / "deploy.zarr", robot.spec)
    result = deploy(policy, robot, store, DeployConfig(episodes=1, max_steps=8))
    assert result.episodes[0]["steps"] == 8, result
    seen = seen[-8:]  # the calls before are the warm-up before the first step
    assert len(seen) == 8 and tuple(seen[0].shape[-3:]) == (3, SIZE, SIZE)
    stored = store.episode(0)["obs.front_image"]
    # the policy saw the frames the store recorded (CHW inside the policy, HWC in the store)
    for step in (0, 7):
        assert np.array_equal(seen[step][0].permute(1, 2, 0).numpy(), stored[step])


def test_virtual_camera_specs_parse_and_bad_ones_name_the_camera():
    from gipo_robot.hardware.emulators.arm_camera import VirtualCamera

    assert VirtualCamera.parse("front") == VirtualCamera("front", 96, 96, 30.0)
    assert VirtualCamera.parse("wrist:64x48@15") == VirtualCamera("wrist", 64, 48, 15.0)
    with pytest.raises(ValueError, match="'top' unknown; known: front, wrist"):
        VirtualCamera.parse("top")
    with pytest.raises(ValueError, match=r"'front:9x': expected camera\[:WxH\]\[@fps\]"):
        VirtualCamera.parse("front:9x")


def test_the_virtual_arm_command_renders_a_camera_its_config_reads(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    pytest.importorskip("scservo_sdk")
    config = tmp_path / "arm.json"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    cli = [sys.executable, "-c", "from gipo_robot.cli import app; app()"]
    args = ["virtual-arm", "--camera", f"front:{SIZE}x{SIZE}@20", "--config-out", str(config)]
    proc = subprocess.Popen(  # started as a script's background job is: with SIGINT ignored
        [*cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (config.exists() and config.stat().st_size > 0):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no robot config within 60 s"
            time.sleep(0.1)
        (table,) = json.loads(config.read_text())["cameras"]
        assert table["name"] == "front" and table["source"].startswith("mujoco:")
        robot = load_robot(config)
        with robot:
            assert robot.reset()["front_image"].shape == (SIZE, SIZE, 3)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert not os.path.exists(table["source"].removeprefix("mujoco:"))  # the emulator cleaned up
