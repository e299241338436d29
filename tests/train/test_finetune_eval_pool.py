"""Fine-tuning evaluates on worker processes (issue 27 item 2) with the numbers of the one-env evaluation."""

from __future__ import annotations

import os

import pytest

from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim.experts import record_demos
from gipo_robot.train.finetune import FinetuneConfig, finetune
from tests.train.test_finetune import TINY

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="module")
def mixed_policy(tmp_path_factory):
    """BC from 5 noisy Lift demos: it lifts the cube in some held-out scenes and not in others."""
    root = tmp_path_factory.mktemp("mixed")
    store = record_demos(root / "demos.zarr", "Lift", 5, noise=0.3, seed=0, horizon=100)
    train_bc(
        store, BCConfig(chunk=2, hidden=[32, 32], steps=600, eval_every=300), out=root / "p", progress=False
    )
    return root / "p"


def test_evaluation_on_two_workers_gives_the_one_env_numbers(tmp_path, mixed_policy):
    runs = {}
    for workers in (1, 2):
        config = FinetuneConfig(**{**TINY, "horizon": 100, "steps_per_env": 30, "env_steps": 60,
                                   "policy_lr": 1e-6, "eval_episodes": 6, "eval_every": 1,
                                   "eval_workers": workers})  # fmt: skip
        runs[workers] = finetune(config, mixed_policy, tmp_path / f"w{workers}", progress=False)
    keys = ("eval_success", "eval_return", "eval_length")
    assert [[r[k] for k in keys] for r in runs[2]] == [[r[k] for k in keys] for r in runs[1]]
    assert all(0 < r["eval_success"] < 1 for r in runs[1])  # mixed: a mixed-up seed would show
    assert all(r["eval_s"] > 0 for r in runs[2])


def test_eval_workers_must_be_positive():
    with pytest.raises(ValueError, match="eval_workers must be >= 1 or None"):
        FinetuneConfig(eval_workers=0)
