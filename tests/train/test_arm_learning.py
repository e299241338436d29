"""``finetune --robot sim:Lift`` improves a scarce-data BC policy (marked slow: ~5 minutes).

The quickstart's BC start (10 scripted demos), then fine-tuning through the Robot interface with the
actor waiting for each version (``mode="sync"``, unpaced: the result does not depend on how fast this
machine is), then the BC and the fine-tuned policy on the same held-out scenes.
Run with ``.venv/bin/python -m pytest -m slow tests/train/test_arm_learning.py``.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

from gipo_robot.loops.evaluate import evaluate
from gipo_robot.policies import load_policy
from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim import make_env
from gipo_robot.sim.experts import record_demos
from gipo_robot.train.arm import ArmConfig, finetune_on_robot


@pytest.mark.slow
def test_finetune_on_the_robot_improves_the_bc_start_on_lift(tmp_path):
    env = make_env("Lift")
    store = record_demos(tmp_path / "demos.zarr", "Lift", 10, 0.3, seed=0, env=env)
    train_bc(store, BCConfig(chunk=1, steps=1500), out=tmp_path / "bc", progress=False)
    config = ArmConfig(robot="sim:Lift", mode="sync", realtime=False, env_steps=20_000, policy_lr=1e-5,
                       epochs=8, min_new_steps=100, max_lag=16)  # fmt: skip
    finetune_on_robot(config, tmp_path / "bc", tmp_path / "run", status=False)
    bc = evaluate(load_policy(tmp_path / "bc"), env, 30, execute_steps=1, progress=False).success_rate
    tuned = evaluate(load_policy(tmp_path / "run" / "checkpoint"), env, 30, execute_steps=1, progress=False)
    env.close()
    print(f"held-out success: BC {bc:.2f} -> fine-tuned {tuned.success_rate:.2f}")
    # Same 30 held-out seeds for both; the BC start is mediocre by construction (10 demos).
    assert 0.2 <= bc <= 0.8, bc
    assert tuned.success_rate >= bc + 0.1, (bc, tuned.success_rate)
