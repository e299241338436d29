"""The robot-time benchmark's bookkeeping (scripts/bench_robot_finetune.py): the robot a start policy runs on,
and the pairs its report compares. No fine-tuning runs here."""

import json
from pathlib import Path

import pytest
import torch

from gipo_robot.policies import save_policy
from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from tests.scripts import load_scripts

PROPRIO = {"robot0_joint_pos": [7], "robot0_gripper_qpos": [2]}


@pytest.fixture(scope="module")
def bench():
    with load_scripts("bench_robot_finetune") as (module,):
        yield module


def saved(tmp_path: Path, images: dict) -> Path:
    config = PolicyConfig(low_dim=PROPRIO, images=images, action_dim=7, hidden=[16], cnn_channels=[4],
                          image_feature_dim=4)  # fmt: skip
    policy = GaussianPolicy(config)
    policy.set_action_bounds(-torch.ones(7), torch.ones(7))
    return save_policy(tmp_path / "policy", policy)


def test_a_camera_policy_runs_on_the_sim_arm_rendering_exactly_its_cameras(bench, tmp_path):
    cameras = saved(tmp_path, {"agentview_image": [3, 48, 48], "robot0_eye_in_hand_image": [3, 48, 48]})
    assert bench.robot_for(cameras) == "sim:Lift?cameras=agentview,robot0_eye_in_hand&image_size=48"
    assert bench.robot_for(saved(tmp_path / "state", {})) == "sim:Lift"


def test_the_report_pairs_camera_runs_with_camera_runs(bench, tmp_path, monkeypatch):
    def row(mode: str, seed: int, minutes: float | None, final: float) -> dict:
        return {"mode": mode, "seed": seed, "robot_minutes_to_90": minutes, "budget_minutes": 30.0,
                "episodes_to_90": None, "final_success": final, "mean_lag": 1.0, "missed_deadlines": 0,
                "steps": 100, "machine": {"cpu": "test"}}  # fmt: skip

    runs = [row("async+cameras", 0, 12.0, 0.9), row("sync+cameras", 0, None, 0.5), row("async", 0, 10.0, 0.9)]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "robot_finetune.json").write_text(json.dumps({"runs": runs}))
    lines = bench.report().splitlines()
    # a camera run is compared with the camera run of the other mode, never with a state run
    pair = "- async+cameras - sync+cameras, robot minutes to 90% (budget where not reached): per seed [-18.0]"
    assert any(line.startswith(pair) for line in lines)
    assert not any(line.startswith("- async - sync") for line in lines)  # no state sync run to pair with
