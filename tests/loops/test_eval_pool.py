"""The evaluation pool (issue 27 item 2): episodes on worker processes give exactly the per-seed results of
``evaluate`` on one env, in seed order, whatever the number of workers."""

from __future__ import annotations

import os

import pytest

from gipo_robot.loops.eval_pool import EvalPool
from gipo_robot.loops.evaluate import evaluate
from gipo_robot.policies import load_policy
from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim import make_env
from gipo_robot.sim.experts import record_demos

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="module")
def half_good_policy(tmp_path_factory):
    """A BC policy from 3 noisy demos: it succeeds on some Lift scenes and fails on others, so a mixed-up
    seed or a changed action would show in the per-seed results."""
    root = tmp_path_factory.mktemp("pool")
    store = record_demos(root / "demos.zarr", "Lift", 3, noise=0.3, seed=0, horizon=60)
    train_bc(
        store, BCConfig(chunk=2, hidden=[32, 32], steps=150, eval_every=50), out=root / "p", progress=False
    )
    return load_policy(root / "p")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_pool_returns_the_single_env_results_seed_by_seed(half_good_policy, workers):
    env = make_env("Lift", horizon=60)
    try:
        single = evaluate(half_good_policy, env, 8, seed=500, execute_steps=1, progress=False)
        with EvalPool.start(env.config, workers) as pool:
            pooled = pool.evaluate(half_good_policy, 8, seed=500, execute_steps=1)
            again = pool.evaluate(half_good_policy, 3, seed=502, execute_steps=1)  # reloads, same workers
    finally:
        env.close()
    assert 0 < single.success_rate < 1  # mixed results: a mixed-up seed or a changed action would show
    assert pooled.episodes == single.episodes  # seed, success, return and length, bit for bit
    assert [r["seed"] for r in pooled.episodes] == list(range(500, 508))
    assert pooled.success_rate == single.success_rate and pooled.mean_return == single.mean_return
    assert again.episodes == single.episodes[2:5]


def test_a_dead_worker_is_a_clear_error(half_good_policy):
    from gipo_robot.sim.robosuite_env import SimError

    env = make_env("Lift", horizon=60)
    env.close()
    with EvalPool.start(env.config, 2) as pool:
        pool.venv._procs[1].kill()
        pool.venv._procs[1].join()
        with pytest.raises(SimError, match="vector env worker 1 died"):
            pool.evaluate(half_good_policy, 4, seed=500, execute_steps=1)


def test_a_training_vector_env_lends_its_workers_and_goes_on_stepping(half_good_policy):
    from gipo_robot.sim import make_vector_env

    env = make_env("Lift", horizon=60)
    venv = make_vector_env("Lift", 2, horizon=60)
    try:
        single = evaluate(half_good_policy, env, 6, seed=500, execute_steps=1, progress=False)
        pool = EvalPool.borrow(venv, env.config)
        from gipo_robot.sim.config import EnvConfig

        assert pool is not None and EvalPool.borrow(venv, EnvConfig(task="Can", horizon=60)) is None
        assert pool.evaluate(half_good_policy, 6, seed=500, execute_steps=1).episodes == single.episodes
        pool.close()  # borrowed: the vector env stays open and steps on after a reset
        obs, _ = venv.reset(seed=0)
        assert venv.step(venv.single_action_space.sample()[None].repeat(2, 0))[0].keys() == obs.keys()
    finally:
        venv.close()
        env.close()
