"""The vision path through the CLI: train-bc --obs on a camera store, eval with the policy's camera rendered,
deploy refusing a robot without that camera, and a store recorded by `record` with a camera trained on."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from gipo_robot.cli import app
from gipo_robot.datasets import EpisodeStore, Feature, Schema

os.environ.setdefault("MUJOCO_GL", "egl")

CAMERA_ROBOT = "sim:Lift?cameras=agentview&image_size=32&render_quality=fast"
SMALL = ["--steps", "10", "--batch-size", "16", "--hidden", "32", "--chunk", "2"]


def run(*args: str):
    result = CliRunner().invoke(app, [*args, "--json"])
    lines = result.stdout.strip().splitlines()
    return result, (json.loads(lines[-1]) if lines else {})


@pytest.fixture(scope="module")
def vision_policy(tmp_path_factory):
    """A proprio+cameras policy trained by `train-bc` on three scripted Lift demos with a 32x32 camera."""
    from gipo_robot.sim.experts import record_demos

    root = tmp_path_factory.mktemp("vision_cli")
    options = {"cameras": ("agentview",), "image_size": 32, "render_quality": "fast", "horizon": 60}
    record_demos(root / "demos.zarr", "Lift", 3, seed=0, **options)
    args = ["train-bc", str(root / "demos.zarr"), "--out", str(root / "bc"), "--obs", "proprio+cameras"]
    result, summary = run(*args, *SMALL, "--image-shift", "2")
    assert result.exit_code == 0, result.output
    return root / "bc", summary


def test_a_state_policy_from_a_camera_store_reads_no_camera_and_evaluates_as_before(vision_policy):
    root = vision_policy[0].parent
    args = ["train-bc", str(root / "demos.zarr"), "--out", str(root / "state"), "--obs", "state", *SMALL]
    result, summary = run(*args)
    assert result.exit_code == 0, result.output
    assert summary["images"] == {} and "object" in summary["features"]
    assert "agentview_image" not in summary["features"]
    result, summary = run("eval", str(root / "state"), "--episodes", "1", "--horizon", "10")
    assert result.exit_code == 0, result.output
    assert summary["n_episodes"] == 1


def test_train_bc_reports_the_features_the_policy_reads(vision_policy):
    path, summary = vision_policy
    assert summary["obs_set"] == "proprio+cameras" and summary["images"] == {"agentview_image": [3, 32, 32]}
    assert "agentview_image" in summary["features"] and "robot0_eef_pos" in summary["features"]
    assert "object" not in summary["features"]
    config = json.loads((path / "config.json").read_text())
    assert config["provenance"]["bc_config"]["image_shift"] == 2


def test_eval_renders_the_policys_camera(vision_policy):
    path, _ = vision_policy
    result, summary = run("eval", str(path), "--episodes", "2", "--horizon", "15", "--out", str(path / "ev"))
    assert result.exit_code == 0, result.output
    assert summary["n_episodes"] == 2 and summary["mean_length"] <= 15


def test_deploy_refuses_the_vision_policy_on_a_robot_without_its_camera(vision_policy, tmp_path):
    path, _ = vision_policy
    out = tmp_path / "deploy.zarr"
    args = ["deploy", str(path), "--out", str(out), "--max-steps", "3", "--no-realtime"]
    result, summary = run(*args, "--robot", "sim:Lift")
    assert result.exit_code == 1
    assert "image feature 'agentview_image' is not provided" in summary["error"]
    assert not out.exists()  # refused before a store was opened or a step was taken
    result, summary = run(*args, "--robot", CAMERA_ROBOT)
    assert result.exit_code == 0, result.output
    assert EpisodeStore.open(out).episode(0)["obs.agentview_image"].shape == (3, 32, 32, 3)


def test_bad_obs_sets_are_clear_errors(tmp_path):
    schema = Schema((Feature("obs.robot0_eef_pos", "float32", (3,)), Feature("action", "float32", (2,))))
    store = EpisodeStore.create(tmp_path / "state.zarr", schema, fps=20)
    store.append_episode({"obs.robot0_eef_pos": np.zeros((5, 3), "f4"), "action": np.zeros((5, 2), "f4")})
    result, summary = run(
        "train-bc", str(tmp_path / "state.zarr"), "--obs", "cameras", "--out", str(tmp_path / "b")
    )
    assert result.exit_code == 1
    assert str(tmp_path / "state.zarr") in summary["error"] and "needs a camera" in summary["error"]
    result, summary = run(
        "train-bc", str(tmp_path / "state.zarr"), "--obs", "pixels", "--out", str(tmp_path / "b")
    )
    assert result.exit_code == 1 and "unknown --obs 'pixels'" in summary["error"]


def test_a_store_recorded_with_a_camera_trains_a_vision_policy(tmp_path):
    out = tmp_path / "teleop.zarr"
    record = ["record", "--robot", CAMERA_ROBOT, "--device", "scripted", "--episodes", "2", "--no-realtime"]
    result, summary = run(*record, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert summary["saved"] == [0, 1]
    result, summary = run("train-bc", str(out), "--out", str(tmp_path / "bc"), *SMALL)  # --obs auto
    assert result.exit_code == 0, result.output
    assert summary["obs_set"] == "proprio+cameras" and summary["images"] == {"agentview_image": [3, 32, 32]}
    assert "object" not in summary["features"]
