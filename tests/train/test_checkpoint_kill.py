"""A fine-tuning run killed with SIGKILL at any step of a checkpoint save resumes (``finetune --resume``) into
the run an uninterrupted one gives: the same weights, the same rollout episodes in ``rollouts.zarr`` (none
stored twice), iterations numbered on from the checkpoint it found. The kill is real: ``GIPO_CRASH_AT=STEP@N``
makes the process SIGKILL itself at that step of the save after iteration N. A damaged checkpoint is called
damaged and names the previous one; the robot learner's checkpoint is saved the same way."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gipo_robot.configs import save_config
from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies import CheckpointError, load_policy
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.finetune import FinetuneError, finetune
from gipo_robot.train.state import read_history

EXE = str(Path(sys.executable).parent / "gipo-robot")
# 3 iterations of two 5-step episodes each; evaluated once, at the end.
TINY = dict(
    task="Lift", num_envs=1, backend="sync", steps_per_env=10, env_steps=30, horizon=5, minibatch_size=8,
    epochs=1, eval_every=100, eval_episodes=1, critic_warmup_iters=0, replay_size=2, policy_lr=1e-3,
)  # fmt: skip


def run_cli(out: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GIPO_CRASH_AT"}
    env.setdefault("MUJOCO_GL", "egl")
    if crash_at is not None:
        env["GIPO_CRASH_AT"] = crash_at
    return subprocess.run([EXE, "finetune", "--out", str(out), *args, "--json"], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_policy(path).state_dict()


@pytest.fixture(scope="module")
def straight(tmp_path_factory, lift_bc_policy) -> Path:
    """The uninterrupted run (``RUN/run``) and its config file (``RUN/tiny.json``)."""
    root = tmp_path_factory.mktemp("straight")
    save_config(FinetuneConfig(**TINY), root / "tiny.json")
    done = run_cli(root / "run", "--policy", str(lift_bc_policy), "--config", str(root / "tiny.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    return root


# Each step is one state a kill can leave on disk; the kill hits iteration 2's save (or the appends after
# it), so iteration 1's checkpoint is there. Until the new checkpoint is renamed into place the run goes back
# to iteration 1's (iteration 2 is collected again); from then on, to iteration 2's, whose two episodes the
# store gets from the checkpoint (both, or the one a kill between the two appends kept from it).
@pytest.mark.parametrize(
    "step, resumes_after",
    [
        # new policy files written, trainer state not yet (before: "sha256 ... modified or truncated")
        pytest.param("policy", 1, marks=pytest.mark.slow),
        pytest.param("trainer_state", 1, marks=pytest.mark.slow),  # every file written, nothing swapped
        ("retired", 1),  # the old checkpoint moved aside, the new one not yet in its place
        pytest.param("swapped", 2, marks=pytest.mark.slow),  # the new one in place, nothing stored yet
        ("appending", 2),  # one of the iteration's two episodes stored
    ],
)
def test_a_kill_at_each_save_step_resumes_the_same_run(
    tmp_path, straight, lift_bc_policy, step, resumes_after
):
    run = tmp_path / "run"
    killed = run_cli(run, "--policy", str(lift_bc_policy), "--config", str(straight / "tiny.json"),
                     crash_at=f"{step}@2")  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = run_cli(run, "--config", str(run / "config.json"), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["env_steps"] == 30
    assert [r["iteration"] for r in read_history(run / "metrics.csv")] == [1, 2, 3]
    # Exactly the uninterrupted run's policy ...
    a, b = weights(straight / "run" / "checkpoint"), weights(run / "checkpoint")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # ... and its rollouts, each once: three iterations of two episodes each.
    want = EpisodeStore.open(straight / "run" / "rollouts.zarr")
    got = EpisodeStore.open(run / "rollouts.zarr")
    assert got.n_episodes == want.n_episodes == 6
    assert list(got.episode_ends) == list(want.episode_ends)
    keys = ["action", "logp", "policy_version", "obs.robot0_eef_pos"]
    for key, expected in want.read_steps(0, want.n_steps, keys).items():
        np.testing.assert_array_equal(got.read_steps(0, got.n_steps, [key])[key], expected, err_msg=key)
    # It said where it went on from.
    assert f"resuming after iteration {resumes_after} of 3" in resumed.stderr
    # No half-written copies are left beside the checkpoint: it and the one before it.
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint")) == [
        "checkpoint", "checkpoint.prev"
    ]  # fmt: skip


def test_a_kill_before_the_first_checkpoint_leaves_nothing_to_resume(tmp_path, straight, lift_bc_policy):
    run = tmp_path / "run"
    killed = run_cli(run, "--policy", str(lift_bc_policy), "--config", str(straight / "tiny.json"),
                     crash_at="retired@1")  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = run_cli(run, "--config", str(run / "config.json"), "--resume")
    assert resumed.returncode == 1
    error = json.loads(resumed.stdout)["error"]
    assert "before its first checkpoint" in error and "without --resume" in error, error


def test_a_damaged_checkpoint_is_called_damaged_and_names_the_previous_one(tmp_path, lift_bc_policy):
    config = FinetuneConfig(**TINY)
    finetune(config, lift_bc_policy, tmp_path / "run", stop_after=2, progress=False)
    model = tmp_path / "run" / "checkpoint" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-100])  # a disk fault after the save
    with pytest.raises(CheckpointError) as err:
        finetune(config, lift_bc_policy, tmp_path / "run", resume=True, progress=False)
    message = str(err.value)
    assert "damaged" in message and "not an interrupted save" in message, message
    assert str(tmp_path / "run" / "checkpoint.prev") in message and "iteration 1" in message, message


def test_resuming_a_run_that_does_not_exist_is_a_clear_error(tmp_path, lift_bc_policy):
    with pytest.raises(FinetuneError, match="nothing to resume"):
        finetune(FinetuneConfig(**TINY), lift_bc_policy, tmp_path / "nosuchrun", resume=True, progress=False)


# --------------------------------------------------------------------------- the robot run's learner

ROUND = """
import sys
from gipo_robot.train.arm.learner_loop import ArmLearner
learner = ArmLearner(sys.argv[1])
learner._rebuild()
learner.pending = 60  # as if two episodes had landed: a round with gradient steps
learner.update_round()
"""


@pytest.mark.parametrize("step", ["policy", "retired"])
def test_a_learner_killed_mid_save_resumes_from_its_last_checkpoint(tmp_path, lift_bc_policy, step):
    from gipo_robot.train.arm import ArmConfig, finetune_on_robot
    from gipo_robot.train.arm.channel import RunChannel
    from gipo_robot.train.arm.learner_loop import ArmLearner

    run = tmp_path / "run"
    config = ArmConfig(episodes=2, robot="sim:Lift?horizon=30", realtime=False, min_new_steps=30,
                       minibatch_size=32)  # fmt: skip
    finetune_on_robot(config, lift_bc_policy, run, status=False)
    before = ArmLearner(run)
    saved = weights(run / "checkpoint")
    env = {**os.environ, "GIPO_CRASH_AT": step}
    killed = subprocess.run([sys.executable, "-c", ROUND, str(run)], capture_output=True, text=True,
                            timeout=300, env=env)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    after = ArmLearner(run)  # no "sha256 ... modified": the last whole checkpoint
    assert (after.rounds, after.version, after.consumed) == (before.rounds, before.version, before.consumed)
    for k, v in after.policy.state_dict().items():
        assert torch.equal(v, saved[k]), k
    # The actor is never handed a version the learner's checkpoint does not hold.
    version, path = RunChannel(run).latest()
    assert version == after.version
    for k, v in weights(path).items():
        assert torch.equal(v, saved[k]), k
