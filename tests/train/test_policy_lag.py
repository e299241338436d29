"""Controlled policy lag (``FinetuneConfig.policy_lag``, issue 25 item 1): each batch is collected by the
policy of L versions ago, its behaviour log-probs are that version's, the buffer size does not change, and
a resumed run takes the lagged versions up from its checkpoint."""

import pytest
import torch

from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies import load_policy
from gipo_robot.train.arm import ArmConfig
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.finetune import finetune
from gipo_robot.train.lag import PolicyHistory
from gipo_robot.train.state import load_trainer_state

# 4 iterations of 10 steps (2 episodes of 5 each); the policy moves from the first update on
LAGGED = dict(
    task="Lift", num_envs=1, backend="sync", steps_per_env=10, env_steps=40, horizon=5, minibatch_size=8,
    epochs=2, eval_every=100, eval_episodes=1, critic_warmup_iters=0, replay_size=1, policy_lr=1e-3,
    policy_lag=2,
)  # fmt: skip


def test_each_batch_is_collected_and_scored_by_the_version_policy_lag_before(tmp_path, lift_bc_policy):
    history = finetune(FinetuneConfig(**LAGGED), lift_bc_policy, tmp_path / "run", progress=False)
    # iterations 0..3 collect with versions 0, 0, 0, 1: the lag grows to L and stays there
    assert [r["batch_lag"] for r in history] == [0, 1, 2, 2]
    table = EpisodeStore.open(tmp_path / "run" / "rollouts.zarr").meta_table()
    assert list(table["policy_version"]) == [0, 0, 0, 0, 0, 0, 1, 1]

    checkpoint = tmp_path / "run" / "checkpoint"
    state = load_trainer_state(checkpoint, optims={}, generator=torch.Generator())
    (batch,) = state.replay.batches  # replay_size 1: the last batch only, whatever the lag
    assert batch.version == 1
    current = load_policy(checkpoint)
    lagged = PolicyHistory(current, 2)
    lagged.load_tensors(state.extra)
    assert [v for v, _ in lagged.versions] == [1, 2, 3]
    behaviour, version = lagged.behaviour()
    assert version == 1
    obs, actions, logged = batch.flat("obs"), batch.flat("actions"), batch.flat("logp_behavior")

    def scored_by(policy):  # one row at a time, as the collector scored them (one env): bit for bit
        rows = [policy.log_prob_per_dim({k: v[i : i + 1] for k, v in obs.items()}, actions[i : i + 1])
                for i in range(len(actions))]  # fmt: skip
        return torch.cat(rows)

    with torch.no_grad():
        torch.testing.assert_close(scored_by(behaviour), logged, rtol=0, atol=0)
        # the current policy (version 4) scores the same samples differently: the data is 3 versions stale
        assert (scored_by(current) - logged).abs().max() > 1e-3


def test_a_resumed_lagged_run_equals_one_never_stopped(tmp_path, lift_bc_policy):
    config = FinetuneConfig(**LAGGED)
    whole = finetune(config, lift_bc_policy, tmp_path / "whole", progress=False)
    finetune(config, lift_bc_policy, tmp_path / "parts", progress=False, stop_after=3)
    parts = finetune(config, lift_bc_policy, tmp_path / "parts", progress=False, resume=True)
    assert [r["batch_lag"] for r in parts] == [0, 1, 2, 2]
    assert [r["rollout_return"] for r in parts] == [r["rollout_return"] for r in whole]
    a, b = load_policy(tmp_path / "whole" / "checkpoint"), load_policy(tmp_path / "parts" / "checkpoint")
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FinetuneConfig(policy_lag=-1), "policy_lag must be >= 0"),
        (
            lambda: FinetuneConfig(policy_lag=2, backend="ray", async_collection=True, workers=2),
            "async_collection has its own",
        ),
        (lambda: ArmConfig(robot="sim:Lift", policy_lag=2), "a robot run takes no policy_lag"),
    ],
)
def test_bad_lag_settings_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
