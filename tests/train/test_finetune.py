"""The fine-tuning loop on the real Lift task: resume equivalence, NaN guard, store and logs."""

import json

import pytest
import torch

from gipo_robot import objectives
from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies import load_policy
from gipo_robot.train.finetune import FinetuneConfig, FinetuneError, finetune

TINY = dict(
    task="Lift",
    num_envs=1,
    backend="sync",
    steps_per_env=15,
    env_steps=45,  # 3 iterations
    horizon=20,
    minibatch_size=8,
    epochs=2,
    eval_every=3,
    eval_episodes=1,
    critic_warmup_iters=0,
    replay_size=2,
    policy_lr=1e-3,
)


def weights(path) -> dict[str, torch.Tensor]:
    return load_policy(path).state_dict()


def test_resume_continues_the_same_run(tmp_path, lift_bc_policy):
    config = FinetuneConfig(**TINY)
    straight = finetune(config, lift_bc_policy, tmp_path / "straight", progress=False)
    finetune(config, lift_bc_policy, tmp_path / "resumed", stop_after=2, progress=False)
    resumed = finetune(config, lift_bc_policy, tmp_path / "resumed", resume=True, progress=False)
    assert [r["iteration"] for r in resumed] == [1, 2, 3]
    a, b = weights(tmp_path / "straight" / "checkpoint"), weights(tmp_path / "resumed" / "checkpoint")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The policy did move (the comparison is not between two untouched copies).
    base = weights(lift_bc_policy)
    assert any(not torch.equal(a[k], base[k]) for k in a)
    assert straight[-1]["env_steps"] == resumed[-1]["env_steps"] == 45


def test_run_writes_rollouts_logs_and_curve(tmp_path, lift_bc_policy):
    history = finetune(FinetuneConfig(**TINY), lift_bc_policy, tmp_path / "run", progress=False)
    store = EpisodeStore.open(tmp_path / "run" / "rollouts.zarr")
    assert store.n_steps == 45 and set(store.meta_table()["source"]) == {"rollout"}
    versions = store.read_steps(0, store.n_steps, ["policy_version"])["policy_version"]
    assert sorted(set(versions.tolist())) == [0, 1, 2]
    for key in (
        "approx_kl",
        "weight_mean",
        "ess",
        "frac_weight_below_1e-3",
        "trust_weight_mean",
        "grad_norm",
    ):
        assert key in history[-1], key
    assert json.loads(history[-1]["staleness"]) == {"0": 15, "1": 15}
    assert "eval_success" in history[-1]
    for name in ("metrics.csv", "learning_curve.png", "config.json"):
        assert (tmp_path / "run" / name).exists(), name


def test_resume_with_another_config_is_refused(tmp_path, lift_bc_policy):
    finetune(FinetuneConfig(**TINY), lift_bc_policy, tmp_path / "run", stop_after=1, progress=False)
    with pytest.raises(FinetuneError, match="differs"):
        finetune(FinetuneConfig(**{**TINY, "replay_size": 3}), lift_bc_policy, tmp_path / "run", resume=True)


def test_non_finite_updates_are_skipped_then_stop_the_run(tmp_path, lift_bc_policy, monkeypatch):
    def broken(logp, logp_behavior, advantages, mask=None):
        loss, stats = objectives.gipo(logp, logp_behavior, advantages, mask)
        return loss * float("nan"), stats

    monkeypatch.setitem(objectives.OBJECTIVES, "broken", broken)
    config = FinetuneConfig(**{**TINY, "objective": "broken", "max_bad_updates": 3})
    with pytest.raises(FinetuneError, match="3 non-finite policy updates in a row"):
        finetune(config, lift_bc_policy, tmp_path / "run", progress=False)


def test_config_errors_name_the_field():
    with pytest.raises(KeyError, match="known"):
        FinetuneConfig(objective="nope")
    with pytest.raises(ValueError, match="replay_size"):
        FinetuneConfig(replay_size=0)
    with pytest.raises(ValueError, match="ratio_level"):
        FinetuneConfig(ratio_level="token")
    # a start below the floor would be lifted to it at the first update (approx-KL ~1 on that batch)
    with pytest.raises(ValueError, match=r"init_log_std -3\.5 is below log_std_floor -3:"):
        FinetuneConfig(init_log_std=-3.5)
    assert FinetuneConfig(init_log_std=-3.5, log_std_floor=-3.5).log_std_floor == -3.5
    assert FinetuneConfig(init_log_std=-3.5, log_std_floor=None).init_log_std == -3.5


def test_collection_acts_with_one_intra_op_thread_and_restores_the_setting(lift_bc_policy, monkeypatch):
    from gipo_robot.sim import make_vector_env
    from gipo_robot.train.collect import collect_iteration

    policy, seen = load_policy(lift_bc_policy), []
    params = policy.distribution_params
    monkeypatch.setattr(
        policy, "distribution_params", lambda obs: seen.append(torch.get_num_threads()) or params(obs)
    )
    config, before = FinetuneConfig(**{**TINY, "steps_per_env": 3}), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with make_vector_env("Lift", 1, backend="sync", horizon=20) as venv:
            collect_iteration(policy, venv, config, 0, torch.Generator().manual_seed(0))
        assert seen == [1, 1, 1]  # idle OpenMP threads would spin on the env workers' cores
        assert torch.get_num_threads() == 2  # the learner's setting, given back
    finally:
        torch.set_num_threads(before)


def test_best_keeps_the_first_highest_evaluation_across_a_resume(tmp_path, lift_bc_policy, monkeypatch):
    from types import SimpleNamespace

    from gipo_robot.policies.checkpoint import read_config
    from gipo_robot.train import finetune as finetune_module

    # evaluations scripted by env steps: 0.2, then 0.6 (the best), then 0.6 again (an equal: not kept)
    scripted = {15: 0.2, 30: 0.6, 45: 0.6}
    monkeypatch.setattr(
        finetune_module._Run,
        "evaluate",
        lambda run: SimpleNamespace(success_rate=scripted[run.env_steps], mean_return=0.0, mean_length=20.0),
    )
    config = FinetuneConfig(**{**TINY, "eval_every": 1})
    out = tmp_path / "run"
    finetune(config, lift_bc_policy, out, stop_after=2, progress=False)
    finetune(config, lift_bc_policy, out, resume=True, progress=False)  # the best so far comes from metrics
    best = read_config(out / "best")["provenance"]["best"]
    assert best == {"iteration": 2, "env_steps": 30, "eval_success": 0.6, "eval_episodes": 1}
    # best/ holds iteration 2's weights: those of checkpoint.prev, not the last checkpoint's
    kept, second, last = (weights(out / name) for name in ("best", "checkpoint.prev", "checkpoint"))
    assert all(torch.equal(kept[k], second[k]) for k in kept)
    assert any(not torch.equal(kept[k], last[k]) for k in kept)
