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


def test_evaluation_on_workers_gives_the_one_env_numbers_and_leaves_training_as_it_was(
    tmp_path, mixed_policy
):
    # eval_workers=1: one env in this process; 2 (sync backend): two processes of the pool's own; None
    # (subprocess backend): the rollout workers, lent between iterations. Training must not notice.
    runs = {}
    for name, backend, workers in (
        ("one", "subprocess", 1),
        ("own", "sync", 2),
        ("lent", "subprocess", None),
    ):
        config = FinetuneConfig(**{**TINY, "horizon": 100, "steps_per_env": 30, "env_steps": 120,
                                   "num_envs": 2, "backend": backend, "policy_lr": 1e-6, "eval_episodes": 6,
                                   "eval_every": 1, "eval_workers": workers})  # fmt: skip
        runs[name] = finetune(config, mixed_policy, tmp_path / name, progress=False)
    evals = ("eval_success", "eval_return", "eval_length")
    training = ("value_loss", "rollout_return", "env_steps")
    for name in ("own", "lent"):
        assert [[r[k] for k in evals] for r in runs[name]] == [[r[k] for k in evals] for r in runs["one"]]
    same = [[repr(r[k]) for k in training] for r in runs["lent"]]  # repr: nan where no episode ended
    assert same == [[repr(r[k]) for k in training] for r in runs["one"]]
    assert all(0 < r["eval_success"] < 1 for r in runs["one"])  # mixed: a mixed-up seed would show
    assert all(r["eval_s"] > 0 for r in runs["lent"])


def test_eval_workers_must_be_positive():
    with pytest.raises(ValueError, match="eval_workers must be >= 1 or None"):
        FinetuneConfig(eval_workers=0)
