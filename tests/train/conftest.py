"""A small BC policy for Lift, trained once per test session from scripted demonstrations."""

import pytest

from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim.experts import record_demos


@pytest.fixture(scope="session")
def lift_bc_policy(tmp_path_factory):
    root = tmp_path_factory.mktemp("lift_bc")
    store = record_demos(root / "demos.zarr", "Lift", 3, noise=0.3, seed=0, horizon=60)
    train_bc(
        store,
        BCConfig(chunk=2, hidden=[32, 32], steps=100, eval_every=50),
        out=root / "policy",
        progress=False,
    )
    return root / "policy"
