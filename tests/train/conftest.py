"""A small BC policy for Lift, trained once per test session from scripted demonstrations."""

import pytest

from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim.experts import collect_demos
from gipo_robot.train.finetune import rollout_schema


@pytest.fixture(scope="session")
def lift_bc_policy(tmp_path_factory):
    from gipo_robot.sim import make_env

    root = tmp_path_factory.mktemp("lift_bc")
    env = make_env("Lift", horizon=60)
    store = EpisodeStore.create(root / "demos.zarr", rollout_schema(env.sim_spec), fps=20)
    for ep in collect_demos("Lift", 3, noise=0.3, seed=0, env=env):
        store.append_episode(
            {k: v for k, v in ep.items() if k in store.schema}, success=ep["episode_success"]
        )
    env.close()
    train_bc(
        store,
        BCConfig(chunk=2, hidden=[32, 32], steps=100, eval_every=50),
        out=root / "policy",
        progress=False,
    )
    return root / "policy"
