"""Fine-tuning on a robot (``finetune --robot``): the actor and the learner process exchange versions through
the run directory; steps carry behaviour log-probs, versions and interventions; labels come from the
simulator, a scripted operator or a device; either process can die without losing more than the episode in
flight; the run resumes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies import load_policy, save_policy
from gipo_robot.teleop.devices import ScriptedDevice
from gipo_robot.train.arm import ArmConfig, finetune_on_robot
from gipo_robot.train.arm.channel import RunChannel
from gipo_robot.train.arm.operator import ScriptedOperator
from gipo_robot.train.learner import FinetuneError
from gipo_robot.train.state import read_history
from tests.loops.test_deploy import constant_policy

EXE = str(Path(sys.executable).parent / "gipo-robot")
FAST = dict(robot="sim:Lift?horizon=30", realtime=False, min_new_steps=30, minibatch_size=32)


def run_quietly(config, policy, out, **kwargs):
    return finetune_on_robot(config, policy, out, status=False, **kwargs)


def test_actor_and_learner_exchange_versions_on_sim_lift(tmp_path, lift_bc_policy):
    # At the robot's 20 Hz, so that the learner's rounds land while the actor acts (1.5 s an episode).
    result = run_quietly(
        ArmConfig(episodes=6, **{**FAST, "realtime": True}), lift_bc_policy, tmp_path / "run"
    )
    store = EpisodeStore.open(tmp_path / "run" / "episodes.zarr")
    assert store.n_episodes == 6 and result["episodes"] == 6
    versions = store.meta_table()["policy_version"]
    assert versions[0] == 0 and versions[-1] >= 1 and np.all(np.diff(versions) >= 0), versions
    # Every step: the raw sample, its behaviour log-prob per dimension (summing to logp), the version.
    steps = store.episode(0)
    assert np.all(steps["policy_version"] == 0) and not steps["intervention"].any()
    np.testing.assert_allclose(steps["logp"], steps["logp_per_dim"].sum(-1), rtol=1e-5, atol=1e-5)
    # ``action`` is what the guard let through (it may clamp the policy's clipped sample further).
    assert np.all(np.abs(steps["action"]) <= 1) and steps["sample"].shape == steps["action"].shape
    # ... and the log-prob is that of version 0 (the published starting policy) at that observation.
    v0 = load_policy(tmp_path / "run" / "weights" / "v000000")
    obs = {k: torch.from_numpy(steps[f"obs.{k}"]) for k in v0.config.low_dim}
    chunk = torch.zeros(len(steps["sample"]), v0.config.chunk, v0.config.action_dim)
    chunk[:, 0] = torch.from_numpy(steps["sample"])
    with torch.no_grad():
        expected = v0.log_prob_per_dim(obs, chunk)[:, 0].numpy()
    np.testing.assert_allclose(steps["logp_per_dim"], expected, rtol=1e-4, atol=1e-4)
    # The learner logged every round's lag histogram and published what it trained.
    history = read_history(tmp_path / "run" / "metrics.csv")
    assert len(history) >= 2 and all("lag_hist" in r for r in history)
    assert max(r["max_lag_seen"] for r in history) >= 1  # the robot kept acting: stale data existed
    beat = RunChannel(tmp_path / "run").heartbeat("learner")
    assert beat["state"] == "finished" and beat["version"] == len(history)
    assert RunChannel(tmp_path / "run").latest()[0] == beat["version"]
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0


def test_sync_mode_runs_every_episode_with_the_newest_version(tmp_path, lift_bc_policy):
    run_quietly(ArmConfig(episodes=4, mode="sync", **FAST), lift_bc_policy, tmp_path / "run")
    versions = EpisodeStore.open(tmp_path / "run" / "episodes.zarr").meta_table()["policy_version"]
    assert list(versions) == [0, 1, 2, 3]  # the actor waited for each round


def virtual_arm_config(bus, path: Path) -> Path:
    path.write_text(json.dumps(bus.robot_config()))
    return path


def test_virtual_serial_arm_with_operator_labels_and_a_takeover(tmp_path):
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus

    with VirtualServoBus("feetech") as bus:
        arm_file = virtual_arm_config(bus, tmp_path / "arm.json")
        spec = load_robot(arm_file).spec
        policy = constant_policy({"joint_pos": [6]}, [0.0] * 6, names=list(spec.action_names))
        save_policy(tmp_path / "policy", policy)
        hold = np.zeros(6)
        # The operator takes over at step 3 of the first attempt and gives control back at step 6.
        device = ScriptedDevice(lambda attempt, obs: ((lambda: hold), (lambda: True)),
                                events={0: {3: ["takeover"], 6: ["takeover"]}})  # fmt: skip
        config = ArmConfig(robot=str(arm_file), reward="operator", max_steps=10, episodes=3, min_new_steps=10,
                           minibatch_size=8, init_log_std=-1.0)  # fmt: skip
        result = run_quietly(config, tmp_path / "policy", tmp_path / "run",
                             operator=ScriptedOperator("ynxy"), device=device)  # fmt: skip
    store = EpisodeStore.open(tmp_path / "run" / "episodes.zarr")
    # y, n, x (discarded: not stored), y
    assert list(store.meta_table()["success"]) == [True, False, True]
    assert result["session"]["ended"] == "budget"
    first = store.episode(0)
    assert list(np.flatnonzero(first["intervention"])) == [3, 4, 5]
    assert np.all(first["policy_version"][[3, 4, 5]] == -1) and np.all(first["policy_version"][:3] == 0)
    assert not first["logp_per_dim"][3:6].any() and first["logp_per_dim"][:3].all()  # no behaviour log-prob
    assert store.episode_meta(0).extra["intervention_steps"] == 3
    # The learner turned its BC term on with the intervention steps.
    history = read_history(tmp_path / "run" / "metrics.csv")
    assert history and history[-1]["bc_steps"] == 3 and "bc_nll" in history[-1]


def test_operator_reward_without_a_terminal_is_a_clear_error(tmp_path, lift_bc_policy):
    done = subprocess.run(
        [EXE, "finetune", "--policy", str(lift_bc_policy), "--robot", "sim:Lift", "--reward", "operator",
         "--out", str(tmp_path / "run"), "--json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "needs a terminal" in json.loads(done.stdout)["error"]
    assert not (tmp_path / "run").exists()  # refused before anything was set up


def test_killing_the_learner_leaves_the_actor_acting_and_the_run_resumable(tmp_path, lift_bc_policy):
    run = tmp_path / "run"
    channel = RunChannel(run)
    killed = {}

    def kill_the_learner():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            beat = channel.heartbeat("learner")
            if beat.get("rounds", 0) >= 1:
                killed.update(pid=beat["pid"], version=beat["version"])
                os.kill(beat["pid"], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_learner)
    killer.start()
    result = run_quietly(ArmConfig(episodes=8, **FAST), lift_bc_policy, run)
    killer.join()
    assert killed, "the learner never finished a round"
    assert result["episodes"] == 8  # the actor went on
    beat = channel.heartbeat("learner")
    assert beat["pid"] != killed["pid"] and beat["state"] == "finished"  # restarted from its checkpoint
    rounds = [r["round"] for r in read_history(run / "metrics.csv")]
    assert rounds == list(range(1, len(rounds) + 1)) and beat["version"] >= killed["version"]
    # The run resumes with a larger budget; anything else changed is refused.
    more = ArmConfig(episodes=10, **FAST)
    with pytest.raises(FinetuneError, match="beyond the budget"):
        run_quietly(ArmConfig(episodes=10, **{**FAST, "minibatch_size": 16}), None, run, resume=True)
    again = run_quietly(more, None, run, resume=True)
    assert again["episodes"] == 10 and again["session"]["episodes"] == 2
    seeds = [EpisodeStore.open(run / "episodes.zarr").episode_meta(i).extra["seed"] for i in range(10)]
    assert len(set(seeds)) == 10  # the resumed actor went on to new scenes


def test_killing_the_actor_loses_at_most_its_open_episode(tmp_path, lift_bc_policy):
    run = tmp_path / "run"
    args = [EXE, "finetune", "--policy", str(lift_bc_policy), "--robot", "sim:Lift?horizon=30",
            "--episodes", "50", "--set", "min_new_steps=30", "--set", "minibatch_size=32", "--out", str(run),
            "--json"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    channel = RunChannel(run)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and channel.heartbeat("actor").get("episodes", 0) < 3:
        time.sleep(0.1)
    time.sleep(0.7)  # 20 Hz: well into the next episode
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EpisodeStore.open(run / "episodes.zarr")
    committed = store.n_episodes
    assert committed >= 3
    assert all(store.episode_meta(i).length > 0 for i in range(committed))
    # The learner notices its parent is gone, finishes its round and exits.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and channel.heartbeat("learner").get("state") != "finished":
        time.sleep(0.2)
    assert channel.heartbeat("learner").get("state") == "finished"
    more = ["--episodes", str(committed + 1)]
    done = subprocess.run([EXE, "finetune", "--resume", "--out", str(run), *more, "--set", "realtime=false",
                           "--json"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert (
        done.returncode == 1 and "beyond the budget" in json.loads(done.stdout)["error"]
    )  # realtime differs
    done = subprocess.run([EXE, "finetune", "--resume", "--out", str(run), *more, "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["episodes"] == committed + 1


def test_a_classifier_labels_episodes_and_one_above_its_false_positive_limit_is_refused(tmp_path):
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.reward import ClassifierRefused, load_classifier, train_classifier
    from gipo_robot.sim.experts import record_demos
    from tests.test_reward import synthetic_store

    # Refused before anything is set up: failures look like successes at their end (false positives 1.0).
    bad = synthetic_store(tmp_path / "bad.zarr", 24, failures_end_closed=True)
    train_classifier(bad, tmp_path / "bad_clf", features=["gripper"], progress=False)
    refused = ArmConfig(reward=f"classifier:{tmp_path / 'bad_clf'}", max_false_positive=0.2, **FAST)
    with pytest.raises(ClassifierRefused, match=r"limit 0\.200"):
        run_quietly(refused, tmp_path / "policy-not-needed", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    # A classifier trained on real Lift episodes (7 of 24 succeed) labels the run's episodes.
    demos = record_demos(tmp_path / "lift.zarr", "Lift", 24, noise=1.0, seed=0, horizon=60)
    report = train_classifier(demos, tmp_path / "clf", progress=False)
    assert report.held_out["false_positive_rate"] <= 0.05
    bc = tmp_path / "bc"
    train_bc(demos, BCConfig(chunk=1, hidden=[16], steps=20, eval_every=20), out=bc, progress=False)
    config = ArmConfig(reward=f"classifier:{tmp_path / 'clf'}", episodes=3, **FAST)
    run_quietly(config, bc, tmp_path / "run")
    store = EpisodeStore.open(tmp_path / "run" / "episodes.zarr")
    extras = [store.episode_meta(i).extra for i in range(store.n_episodes)]
    assert [e["label_source"] for e in extras] == ["classifier"] * 3
    assert all(0.0 <= e["classifier_p"] <= 1.0 for e in extras)
    threshold = load_classifier(tmp_path / "clf", max_false_positive=0.05).threshold
    assert [e["classifier_p"] > threshold for e in extras] == list(store.meta_table()["success"])


def test_logged_episodes_start_the_learner(tmp_path, lift_bc_policy):
    from gipo_robot.sim.experts import record_demos

    first = run_quietly(ArmConfig(episodes=3, **FAST), lift_bc_policy, tmp_path / "earlier")
    logged_steps = first["session"]["steps"]
    demos = record_demos(tmp_path / "demos.zarr", "Lift", 2, noise=0.0, seed=0, horizon=30)
    demo_steps = demos.n_steps
    stores = [str(tmp_path / "earlier" / "episodes.zarr"), str(tmp_path / "demos.zarr")]
    config = ArmConfig(episodes=1, from_stores=stores, critic_warmup_iters=0, **FAST)
    run_quietly(config, lift_bc_policy, tmp_path / "run")
    first_round = read_history(tmp_path / "run" / "metrics.csv")[0]
    # The earlier run's sampled steps are replayed (as version 0), the demonstrations feed the BC term.
    assert first_round["replay_steps"] == logged_steps + first_round["new_steps"]
    assert first_round["bc_steps"] == demo_steps and "bc_nll" in first_round


def test_deploy_sample_logs_episodes_a_robot_run_replays(tmp_path, lift_bc_policy):
    done = subprocess.run(
        [EXE, "deploy", str(lift_bc_policy), "--robot", "sim:Lift?horizon=30", "--episodes", "2", "--sample",
         "--no-realtime", "--out", str(tmp_path / "deploy.zarr"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    logged = EpisodeStore.open(tmp_path / "deploy.zarr")
    steps = logged.episode(0)
    assert logged.episode_meta(0).source == "deploy" and logged.episode_meta(0).policy_version == 0
    assert np.all(steps["policy_version"] == 0) and steps["logp_per_dim"].all()
    np.testing.assert_allclose(steps["logp"], steps["logp_per_dim"].sum(-1), rtol=1e-5, atol=1e-5)
    config = ArmConfig(episodes=1, from_stores=[str(tmp_path / "deploy.zarr")], **FAST)
    run_quietly(config, lift_bc_policy, tmp_path / "run")
    first_round = read_history(tmp_path / "run" / "metrics.csv")[0]
    assert first_round["replay_steps"] == logged.n_steps + first_round["new_steps"]


def test_a_bus_unplugged_mid_episode_commits_it_as_failed_and_ends_the_run(tmp_path):
    from gipo_robot.hardware.config import load_robot
    from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus

    with VirtualServoBus("feetech") as bus:
        arm_file = virtual_arm_config(bus, tmp_path / "arm.json")
        spec = load_robot(arm_file).spec
        save_policy(
            tmp_path / "policy", constant_policy({"joint_pos": [6]}, [0.0] * 6, names=list(spec.action_names))
        )
        channel = RunChannel(tmp_path / "run")

        def unplug_once_acting():  # the learner is up once the actor acts; then 1.5 s into episode 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not channel.heartbeat("learner"):
                time.sleep(0.05)
            time.sleep(1.5)
            bus.disconnect()

        unplug = threading.Thread(target=unplug_once_acting)
        unplug.start()
        config = ArmConfig(robot=str(arm_file), max_steps=300, episodes=3, min_new_steps=10, minibatch_size=8)
        result = run_quietly(config, tmp_path / "policy", tmp_path / "run", operator=ScriptedOperator("yyy"))
        unplug.join()
    assert result["session"]["ended"] == "error" and "BusError" in result["session"]["error"]
    store = EpisodeStore.open(tmp_path / "run" / "episodes.zarr")
    assert store.n_episodes == 1 and not store.episode_meta(0).success
    assert 0 < store.episode_meta(0).length < 300 and "BusError" in store.episode_meta(0).extra["error"]


def test_a_relabelled_episode_changes_what_the_learner_learns(tmp_path, lift_bc_policy):
    from gipo_robot.train.arm.learner_loop import ArmLearner

    run_quietly(ArmConfig(episodes=2, **FAST), lift_bc_policy, tmp_path / "run")
    learner = ArmLearner(tmp_path / "run")  # resumes from the run's checkpoint, rebuilds its buffer
    learner._rebuild()
    batch = next(b for b in learner.replay.batches if b.episode == 0)
    assert batch.rewards.sum() == 0 and bool(batch.truncated[-1, 0])  # the sim said: failure
    EpisodeStore.open(tmp_path / "run" / "episodes.zarr", "a").relabel(0, True)  # gipo-robot label
    learner._read_new()
    assert float(batch.rewards[-1, 0]) == 1.0 and bool(batch.terminated[-1, 0]) and not batch.truncated[-1, 0]


def test_a_non_finite_measurement_ends_the_episode_as_a_failed_one(tmp_path, lift_bc_policy):
    from gipo_robot.datasets.schema import sampled_step_schema
    from gipo_robot.train.arm.actor_loop import ArmActor
    from tests.loops.test_deploy import NanAfter

    robot = NanAfter("Lift", horizon=30)
    channel = RunChannel(tmp_path / "run")
    channel.publish(load_policy(lift_bc_policy), 0)
    store = EpisodeStore.create(channel.store_path, sampled_step_schema(robot.spec), fps=20)
    actor = ArmActor(ArmConfig(episodes=3, **FAST), channel, robot, status=False)
    result = actor.run(store)
    robot.close()
    assert (
        result["ended"] == "error"
        and "sensor fault" in result["error"]
        and "obs.robot0_eef_pos" in result["error"]
    )
    assert store.n_episodes == 1 and store.episode_meta(0).length == 5 and not store.episode_meta(0).success


def test_an_episode_landing_as_the_actor_finishes_is_learned_from(tmp_path, lift_bc_policy, monkeypatch):
    # The race CI once lost: the learner looks (nothing new), the actor commits its last episode and says
    # "finished", the learner sees "finished" -- that last episode must still make a round.
    import shutil

    from gipo_robot.train.arm.learner_loop import ArmLearner

    run_quietly(ArmConfig(episodes=1, **FAST), lift_bc_policy, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "checkpoint")
    (tmp_path / "run" / "metrics.csv").unlink()
    looks = []
    read_new = ArmLearner._read_new

    def late_look(self):  # the first look comes just before the episode lands
        looks.append(1)
        return False if len(looks) == 1 else read_new(self)

    monkeypatch.setattr(ArmLearner, "_read_new", late_look)
    learner = ArmLearner(tmp_path / "run")
    learner.run()
    assert learner.rounds == 1 and learner.consumed == 1
