"""Fine-tuning on Ray (local instance): lockstep equals the subprocess backend, a killed worker is replaced
without a trace in the results, weights reach workers by version, asynchronous batches carry their lag."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray")

from gipo_robot.datasets import EpisodeStore  # noqa: E402
from gipo_robot.policies import load_policy  # noqa: E402
from gipo_robot.sim.config import EnvConfig  # noqa: E402
from gipo_robot.sim.ray_backend import RayVectorEnv, connect  # noqa: E402
from gipo_robot.train.async_collect import AsyncCollector, policy_state, weights_checksum  # noqa: E402
from gipo_robot.train.finetune import FinetuneConfig, finetune  # noqa: E402

TINY = dict(
    task="Lift",
    num_envs=2,
    steps_per_env=15,
    env_steps=60,  # 2 iterations of 2 envs x 15 steps
    horizon=20,
    minibatch_size=8,
    epochs=2,
    eval_every=2,
    eval_episodes=1,
    critic_warmup_iters=0,
    replay_size=2,
    policy_lr=1e-3,
)
TIMING = {"env_steps_per_s", "update_s", "collect_s", "eval_s"}  # wall-clock numbers, different in every run


@pytest.fixture(scope="module")
def local_ray():
    connect(num_cpus=2)  # a local Ray, pinned to 127.0.0.1
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def subprocess_run(tmp_path_factory, lift_bc_policy):
    out = tmp_path_factory.mktemp("ft") / "subprocess"
    return out, finetune(FinetuneConfig(**TINY, backend="subprocess"), lift_bc_policy, out, progress=False)


def _assert_same_run(a, b) -> None:
    """Same metrics (timings aside), same final weights, same rollout store."""
    (dir_a, hist_a), (dir_b, hist_b) = a, b
    assert len(hist_a) == len(hist_b) == 2
    for ra, rb in zip(hist_a, hist_b, strict=True):
        ka, kb = set(ra) - TIMING - {"worker_restarts"}, set(rb) - TIMING - {"worker_restarts"}
        assert ka == kb
        for k in ka:
            assert ra[k] == rb[k] or (ra[k] != ra[k] and rb[k] != rb[k]), k  # NaN == NaN here
    wa, wb = load_policy(dir_a / "checkpoint").state_dict(), load_policy(dir_b / "checkpoint").state_dict()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    sa, sb = EpisodeStore.open(dir_a / "rollouts.zarr"), EpisodeStore.open(dir_b / "rollouts.zarr")
    assert sa.n_steps == sb.n_steps == 60
    keys = ["action", "reward", "logp", "policy_version", "obs.object"]
    for k, va in sa.read_steps(0, sa.n_steps, keys).items():
        np.testing.assert_array_equal(va, sb.read_steps(0, sb.n_steps, [k])[k], err_msg=k)
    assert list(sa.meta_table()["success"]) == list(sb.meta_table()["success"])


@pytest.mark.slow  # ~10 s; the killed-worker run below equals the same reference
def test_lockstep_ray_run_equals_subprocess_run(local_ray, subprocess_run, lift_bc_policy, tmp_path):
    config = FinetuneConfig(**TINY, backend="ray", workers=2)
    out = tmp_path / "ray"
    _assert_same_run((out, finetune(config, lift_bc_policy, out, progress=False)), subprocess_run)
    assert json.loads((out / "config.json").read_text())["workers"] == 2


def test_worker_killed_mid_collection_is_replaced_and_the_run_is_unchanged(
    local_ray, subprocess_run, lift_bc_policy, tmp_path, monkeypatch
):
    # Kill worker 1's process at the 5th step of iteration 2 (call 15 + 5): episodes of that iteration
    # have already ended by then (horizon 20 -> some from iteration 1 are cut; none half-written must stay).
    calls = {"n": 0}
    original_step = RayVectorEnv.step

    def step_then_die(self, actions):
        calls["n"] += 1
        if calls["n"] == 20:
            os.kill(self.worker_pids()[1], signal.SIGKILL)
        return original_step(self, actions)

    monkeypatch.setattr(RayVectorEnv, "step", step_then_die)
    out = tmp_path / "killed"
    history = finetune(FinetuneConfig(**TINY, backend="ray", workers=2), lift_bc_policy, out, progress=False)
    assert [r["worker_restarts"] for r in history] == [0, 1]
    assert calls["n"] == 15 + 5 + 15  # iteration 2 collected again from its start
    _assert_same_run((out, history), subprocess_run)


def test_weights_reach_workers_by_version_and_stale_batches_are_dropped(local_ray, lift_bc_policy):
    policy = load_policy(lift_bc_policy)
    config = EnvConfig(task="Lift", horizon=20)
    collector = AsyncCollector(config, 2, policy, 0, workers=2, steps=5, seed=0, max_lag=0, max_restarts=1)
    try:
        v0 = weights_checksum(policy_state(policy))
        first = collector.take()
        assert (first.version, first.lag, first.weights_sha256) == (0, 0, v0)
        _assert_behaviour_logp_from(policy, first.collected.batch)

        # Version 1: other weights. Worker `first.worker` stays idle; the other one's version-0 batch is now
        # 1 version old > max_lag 0: dropped, and that worker relaunched with version 1.
        with torch.no_grad():
            policy.mean_head.bias.add_(0.1)
        v1 = weights_checksum(policy_state(policy))
        assert v1 != v0
        collector.publish(policy, 1)
        second = collector.take()
        assert second.worker != first.worker
        assert (second.version, second.lag, second.weights_sha256, collector.dropped) == (1, 0, v1, 1)
        _assert_behaviour_logp_from(policy, second.collected.batch)

        # A worker killed with a batch in flight: replaced, relaunched, its batch never arrives.
        old_pid = collector.worker_pids()[first.worker]
        collector.launch(first.worker)
        os.kill(old_pid, signal.SIGKILL)
        third = collector.take()
        assert (third.worker, third.version, third.weights_sha256) == (first.worker, 1, v1)
        assert collector.restarts == 1
        assert collector.worker_pids()[first.worker] != old_pid
    finally:
        collector.close()


def _assert_behaviour_logp_from(policy, batch) -> None:
    """The batch's behaviour log-probs are the learner's policy's log-probs of its actions: the worker ran
    exactly these weights."""
    with torch.no_grad():
        logp = policy.log_prob_per_dim(batch.flat("obs"), batch.flat("actions"))
    torch.testing.assert_close(batch.flat("logp_behavior"), logp, rtol=0, atol=1e-5)


@pytest.mark.slow  # ~15 s
def test_async_run_stores_batches_with_their_versions_and_logs_the_lag(local_ray, lift_bc_policy, tmp_path):
    config = FinetuneConfig(**TINY, backend="ray", workers=2, async_collection=True, max_lag=8)
    assert (config.batch_envs, config.iterations) == (1, 4)  # one worker's 1 env x 15 steps per iteration
    history = finetune(config, lift_bc_policy, tmp_path / "async", progress=False)
    assert [r["iteration"] for r in history] == [1, 2, 3, 4]
    lags = [r["batch_lag"] for r in history]
    assert lags[0] == 0 and all(0 <= lag <= 8 for lag in lags)
    # Iteration i (0-based) learns at version i from a batch collected by version i - lag_i; the replay
    # (K = 2) holds that batch and the previous one, one version older since:
    # {lag_i: 15, lag_{i-1} + 1: 15} (15 samples each).
    for i in range(1, 4):
        expected = Counter({lags[i]: 15}) + Counter({lags[i - 1] + 1: 15})
        assert json.loads(history[i]["staleness"]) == {str(k): v for k, v in sorted(expected.items())}
    store = EpisodeStore.open(tmp_path / "async" / "rollouts.zarr")
    versions = store.read_steps(0, store.n_steps, ["policy_version"])["policy_version"]
    assert store.n_steps == 60
    assert sorted(Counter(versions.tolist()).items()) == sorted(
        Counter(i - lag for i, lag in enumerate(lags) for _ in range(15)).items()
    )


def test_config_errors_name_the_field():
    cases = [
        ({"num_envs": 2, "workers": 2}, r"FinetuneConfig\.workers needs backend='ray'"),
        ({"async_collection": True}, r"FinetuneConfig\.async_collection needs backend='ray'"),
        (
            {"backend": "ray", "num_envs": 2, "workers": 3},
            r"FinetuneConfig\.workers must be between 1 and num_envs \(2\), got 3",
        ),
        (
            {"backend": "ray", "num_envs": 3, "workers": 2, "async_collection": True},
            r"FinetuneConfig\.num_envs \(3\) must be a multiple of workers \(2\)",
        ),
        ({"backend": "ray", "max_lag": -1}, r"FinetuneConfig\.max_lag must be >= 0, got -1"),
        ({"backend": "mpi"}, r"FinetuneConfig\.backend must be one of ray, subprocess, sync, got 'mpi'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            FinetuneConfig(**kwargs)
