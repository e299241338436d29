"""Issue 28 item 10: a robot fault during ``record`` (an unplugged follower, a sensor reading NaN) holds the
arm, commits the steps so far as a failed episode and ends the session with exit code 3 and one JSON object,
as ``deploy`` does; before, ``record`` died with a traceback and dropped the episode."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import validate
from gipo_robot.loops.record import RecorderConfig, record
from tests.loops.test_deploy import NanAfter
from tests.loops.test_record import Stubborn

os.environ.setdefault("MUJOCO_GL", "egl")


def test_a_sensor_reading_nan_commits_the_episode_as_failed(tmp_path):
    robot = NanAfter("Lift", horizon=60)
    out = tmp_path / "nan.zarr"
    config = RecorderConfig(out=str(out), episodes=2, realtime=False, status=False)
    result = record(robot, Stubborn(np.array([0, 0, 0.5, 0, 0, 0, -1.0])), config)
    robot.close()
    assert (
        result.ended == "robot_fault"
        and "sensor fault" in result.error
        and "obs.robot0_eef_pos" in result.error
    )
    # NanAfter reads NaN once 5 actions went out: the observation of step 5 is the faulty one.
    assert result.saved == [0] and result.steps == 5
    meta = validate(out).episode_meta(0)
    assert meta.length == 5 and meta.success is False
    assert meta.extra["end"] == "robot_fault" and meta.extra["label"] == "fault"
    assert "sensor fault" in meta.extra["error"]


pytest.importorskip("dynamixel_sdk")
pytest.importorskip("scservo_sdk")
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus  # noqa: E402


def test_record_commits_the_episode_when_the_follower_is_unplugged(tmp_path):
    # Two virtual arms on ptys: a Dynamixel leader driving a Feetech follower. 1 s into the episode the
    # follower's cable is pulled (the bus goes silent); the driver's retries run out.
    with VirtualServoBus("dynamixel") as leader_bus, VirtualServoBus("feetech") as follower_bus:
        leader_cfg, follower_cfg = tmp_path / "leader.json", tmp_path / "follower.json"
        leader_cfg.write_text(json.dumps(leader_bus.robot_config(name="leader")))
        follower_cfg.write_text(json.dumps(follower_bus.robot_config(name="follower")))
        out = tmp_path / "rec.zarr"
        unplug = threading.Timer(1.0, follower_bus.disconnect)
        unplug.start()
        result = CliRunner().invoke(
            app,
            ["record", "--robot", str(follower_cfg), "--device", "leader", "--leader", str(leader_cfg),
             "--max-seconds", "5", "--episodes", "2", "--out", str(out), "--json"],
        )  # fmt: skip
        unplug.join()
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ended"] == "robot_fault" and "BusError" in summary["error"]
    assert summary["saved"] == [0] and 0 < summary["steps"] < 150  # 5 s at 30 Hz, cut short
    meta = validate(out).episode_meta(0)
    assert meta.success is False and meta.length == summary["steps"] and "BusError" in meta.extra["error"]


def test_deploy_exits_3_when_the_robot_stops_it(tmp_path):
    # deploy already committed the episode (tests/loops/test_deploy.py); it exited 0 all the same.
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.policies import save_policy
    from tests.loops.test_deploy import constant_policy

    with VirtualServoBus("feetech") as bus:
        cfg = tmp_path / "arm.json"
        cfg.write_text(json.dumps(bus.robot_config()))
        names = list(load_robot(cfg).spec.action_names)
        ckpt = save_policy(tmp_path / "ckpt", constant_policy({"joint_pos": [6]}, [0.0] * 6, names=names))
        unplug = threading.Timer(1.0, bus.disconnect)
        unplug.start()
        result = CliRunner().invoke(
            app,
            ["deploy", str(ckpt), "--robot", str(cfg), "--max-steps", "300", "--out", str(tmp_path / "d"),
             "--json"],
        )  # fmt: skip
        unplug.join()
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "BusError" in summary["error"] and summary["episodes_run"] == 1
