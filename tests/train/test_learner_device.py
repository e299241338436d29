"""The learner's device (``FinetuneConfig.learner_device``, issue 27 item 4): the learner's policy, critic and
optimisers live there, collection and evaluation act with a CPU copy synced after every update, checkpoints
hold CPU tensors. On the CPU the run is the one it was before devices existed (one policy, no copy)."""

import copy
import json
from dataclasses import asdict

import pytest
import torch
from torch import nn

import gipo_robot.train.finetune as finetune_module
from gipo_robot.policies import load_policy
from gipo_robot.policies.checkpoint import load_critic
from gipo_robot.train.arm import ArmConfig
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.finetune import finetune
from gipo_robot.train.learner import Learner, collection_policy, sync_weights
from gipo_robot.train.state import load_trainer_state, read_history
from tests.train.test_finetune import TINY
from tests.train.test_finetune_cli import TINY as CLI_TINY
from tests.train.test_finetune_cli import finetune as finetune_cli

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device (torch.cuda.is_available() is False)")
no_cuda = pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")


def numbers(history: list[dict]) -> str:
    """A run's records without the wall-clock columns, as text (the rest must match bit for bit; a NaN, as
    of an iteration in which no episode ended, equals itself only this way)."""
    return repr(
        [{k: v for k, v in r.items() if not k.endswith("_s") and k != "env_steps_per_s"} for r in history]
    )


# --- the config --------------------------------------------------------------------------------------------


def test_an_unknown_device_string_is_refused_naming_the_field():
    for bad in ("gpu", "CUDA", "cuda:x", "cuda:-1", "mps", ""):
        with pytest.raises(ValueError, match=rf"FinetuneConfig\.learner_device must be .*got '{bad}'"):
            FinetuneConfig(learner_device=bad)
    with pytest.raises(ValueError, match=r"learner_device.*got 'gpu'"):  # the robot path's config inherits it
        ArmConfig(learner_device="gpu")
    assert FinetuneConfig().learner_device == "cpu"


def test_cuda_without_cuda_is_refused_naming_the_field_and_what_was_found(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"learner_device is '{device}'.*is_available\(\) is False"):
            FinetuneConfig(learner_device=device)
    # With CUDA, an index past the machine's devices names how many there are.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ValueError, match=r"learner_device is 'cuda:1'.*1 CUDA device\(s\) \(cuda:0 to cuda:0\)"
    ):
        FinetuneConfig(learner_device="cuda:1")
    assert FinetuneConfig(learner_device="cuda:0").learner_device == "cuda:0"


# --- the collection copy and its sync (pure torch) --------------------------------------------------------


def test_sync_copies_every_parameter_and_buffer_of_the_learner_into_the_collection_copy():
    torch.manual_seed(0)
    learner = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    actor = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        learner[1].running_mean.fill_(0.5)  # a buffer, not a parameter: it must travel too
    assert not torch.equal(learner[0].weight, actor[0].weight)
    sync_weights(learner, actor)
    for (name, a), b in zip(learner.state_dict().items(), actor.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # A copy, not shared storage: the learner's next step leaves the collection copy as it was until the sync.
    synced = actor[0].weight.detach().clone()
    with torch.no_grad():
        learner[0].weight.add_(1.0)
    assert torch.equal(actor[0].weight, synced) and not torch.equal(actor[0].weight, learner[0].weight)
    sync_weights(learner, actor)
    assert torch.equal(actor[0].weight, learner[0].weight)
    sync_weights(learner, learner)  # one module (the CPU learner): nothing to do, nothing breaks


def test_collection_policy_is_the_learners_own_on_the_cpu_and_a_cpu_copy_elsewhere():
    policy = nn.Linear(2, 2)
    assert collection_policy(policy, torch.device("cpu")) is policy  # no copy: the CPU run is unchanged
    copy_ = collection_policy(policy, torch.device("cuda"))  # made from a CPU policy here: no CUDA needed
    assert copy_ is not policy and copy_.weight.device.type == "cpu"
    assert torch.equal(copy_.weight, policy.weight) and copy_.weight.data_ptr() != policy.weight.data_ptr()


# --- runs on the CPU -------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy_lag", [0, 1])
def test_a_separate_collection_copy_synced_after_each_update_gives_the_same_run(
    tmp_path, lift_bc_policy, monkeypatch, policy_lag
):
    # What a CUDA learner does (collect, evaluate and keep lagged versions with a CPU copy synced after each
    # update), forced on the CPU: a missing or misplaced sync would collect or evaluate with other weights.
    config = FinetuneConfig(**{**TINY, "policy_lag": policy_lag, "learner_device": "cpu"})
    one = finetune(config, lift_bc_policy, tmp_path / "one", progress=False)
    copies = []

    def separate(policy, device):
        copies.append(copy.deepcopy(policy))
        return copies[-1]

    monkeypatch.setattr(finetune_module, "collection_policy", separate)
    two = finetune(config, lift_bc_policy, tmp_path / "two", progress=False)
    assert len(copies) == 1
    assert numbers(two) == numbers(one)
    a, b = load_policy(tmp_path / "one" / "checkpoint"), load_policy(tmp_path / "two" / "checkpoint")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    for (name, x), y in zip(a.state_dict().items(), copies[0].state_dict().values(), strict=True):
        assert torch.equal(x, y), name  # the copy ended synced with the learner's last update
    # The policy did move (not a comparison of two untouched copies).
    assert not torch.equal(a.mean_head.weight, load_policy(lift_bc_policy).mean_head.weight)


def test_an_explicit_cpu_learner_saves_a_checkpoint_that_reloads_and_resumes(tmp_path, lift_bc_policy):
    config = FinetuneConfig(**{**TINY, "learner_device": "cpu"})
    finetune(config, lift_bc_policy, tmp_path / "run", stop_after=2, progress=False)
    checkpoint = tmp_path / "run" / "checkpoint"
    policy, critic = load_policy(checkpoint), load_critic(checkpoint)
    learner = Learner(policy, critic, config)
    state = load_trainer_state(checkpoint, optims=learner.optimizers, generator=torch.Generator())
    assert state.progress["iteration"] == 2 and len(state.replay.batches) == 2
    moments = [s["exp_avg"] for o in learner.optimizers.values() for s in o.state.values()]
    assert moments and all(m.device.type == "cpu" and m.abs().sum() > 0 for m in moments)
    resumed = finetune(config, lift_bc_policy, tmp_path / "run", resume=True, progress=False)
    assert [r["iteration"] for r in resumed] == [1, 2, 3]


def test_cli_learner_device_flag_names_the_field_and_overrides_a_saved_cuda_config(tmp_path, lift_bc_policy):
    common = ("--policy", str(lift_bc_policy))
    bad = finetune_cli(*common, "--learner-device", "gpu", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1
    assert "learner_device" in json.loads(bad.stdout)["error"] and "'gpu'" in json.loads(bad.stdout)["error"]
    # A config saved on a GPU machine starts here with --learner-device cpu (the flag goes in as it is read).
    saved = {**asdict(FinetuneConfig(**CLI_TINY)), "learner_device": "cuda"}
    (tmp_path / "gpu.json").write_text(json.dumps(saved))
    if not CUDA:
        refused = finetune_cli(*common, "--config", str(tmp_path / "gpu.json"), "--out", str(tmp_path / "r"))
        error = json.loads(refused.stdout)["error"]
        assert refused.returncode == 1 and "learner_device is 'cuda'" in error and "is_available" in error
    done = finetune_cli(*common, "--config", str(tmp_path / "gpu.json"), "--learner-device", "cpu",
                        "--out", str(tmp_path / "cpu"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "cpu" / "config.json").read_text()) == {**saved, "learner_device": "cpu"}


@no_cuda
def test_cli_cuda_without_cuda_fails_before_any_env_step(tmp_path, lift_bc_policy):
    done = finetune_cli(
        "--policy", str(lift_bc_policy), "--learner-device", "cuda", "--out", str(tmp_path / "r")
    )
    assert done.returncode == 1 and "learner_device is 'cuda'" in json.loads(done.stdout)["error"]
    assert not (tmp_path / "r").exists()


# --- runs on a GPU (where one is lent) -------------------------------------------------------------------

# A few hundred env steps: 3 iterations of 2 envs x 50 steps.
GPU_TINY = dict(
    task="Lift", num_envs=2, backend="sync", steps_per_env=50, env_steps=300, horizon=50, minibatch_size=32,
    epochs=2, eval_every=2, eval_episodes=1, eval_workers=1, critic_warmup_iters=0, replay_size=2,
    policy_lr=1e-3, learner_device="cuda",
)  # fmt: skip


@needs_cuda
@pytest.mark.parametrize(
    "extra", [{}, {"advantage": "vtrace", "bc_coef": 0.1, "policy_lag": 1}], ids=["gae", "vtrace_bc_lag"]
)
def test_a_cuda_learner_trains_on_the_gpu_and_collects_with_a_synced_cpu_copy(
    tmp_path, lift_bc_policy, monkeypatch, extra
):
    if extra.get("bc_coef"):
        extra = {**extra, "demo_store": str(lift_bc_policy.parent / "demos.zarr")}
    config = FinetuneConfig(**{**GPU_TINY, **extra})
    syncs = []

    def spy(learner_policy, actor):
        sync_weights(learner_policy, actor)
        mine = {k: v.detach().cpu() for k, v in learner_policy.state_dict().items()}
        syncs.append({
            "learner": {t.device.type for t in learner_policy.state_dict().values()},
            "actor": {t.device.type for t in actor.state_dict().values()},
            "equal": all(torch.equal(mine[k], v) for k, v in actor.state_dict().items()),
            "weights": mine,
        })  # fmt: skip

    monkeypatch.setattr(finetune_module, "sync_weights", spy)
    history = finetune(config, lift_bc_policy, tmp_path / "run", progress=False)
    assert [r["iteration"] for r in history] == [1, 2, 3] and history[-1]["env_steps"] == 300
    assert all(r["skipped_updates"] == 0 for r in history) and "eval_success" in history[-1]
    assert len(syncs) == 3
    for s in syncs:
        assert s["learner"] == {"cuda"} and s["actor"] == {"cpu"} and s["equal"]
    # The checkpoint loads on the CPU, holding the learner's last weights.
    saved = load_policy(tmp_path / "run" / "checkpoint").state_dict()
    for k, v in saved.items():
        assert v.device.type == "cpu" and torch.equal(v, syncs[-1]["weights"][k]), k
    assert not torch.equal(
        saved["mean_head.weight"], load_policy(lift_bc_policy).state_dict()["mean_head.weight"]
    )
    # A resume loads the checkpoint onto the GPU (optimiser moments included) and goes on.
    finetune(config, lift_bc_policy, tmp_path / "parts", stop_after=2, progress=False)
    resumed = finetune(config, lift_bc_policy, tmp_path / "parts", resume=True, progress=False)
    assert [r["iteration"] for r in resumed] == [1, 2, 3]
    assert len(read_history(tmp_path / "parts" / "metrics.csv")) == 3
    assert len(syncs) == 3 + 2 + 1 and all(s["learner"] == {"cuda"} and s["equal"] for s in syncs)


@needs_cuda
def test_a_robot_run_with_a_cuda_learner_publishes_versions_that_load_on_the_cpu(tmp_path, lift_bc_policy):
    from gipo_robot.datasets import EpisodeStore
    from tests.train.test_arm import FAST, run_quietly

    run_quietly(
        ArmConfig(episodes=3, mode="sync", learner_device="cuda", **FAST), lift_bc_policy, tmp_path / "run"
    )
    versions = EpisodeStore.open(tmp_path / "run" / "episodes.zarr").meta_table()["policy_version"]
    assert list(versions) == [0, 1, 2]  # the learner's rounds on the GPU published every version
    policy = load_policy(tmp_path / "run" / "checkpoint")
    assert all(p.device.type == "cpu" for p in policy.parameters())
