"""The success classifier on real episode stores: it learns a success signal that only successful
episodes' final steps carry, reports held-out false-positive/negative rates, round-trips through its
folder, and is refused above a false-positive limit (or when no held-out failure measured it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gipo_robot.datasets import EpisodeStore, step_schema
from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.reward import ClassifierError, ClassifierRefused, load_classifier, train_classifier
from gipo_robot.reward.examples import final_window, label_steps, split_episodes

EXE = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"
CAM = (12, 12, 3)


def arm_spec(cameras: bool = False, joint_shape: tuple[int, ...] = (3,)) -> RobotSpec:
    """A 3-joint arm observing joint_pos, gripper, the (privileged) object and optionally a camera."""
    shapes = {"joint_pos": joint_shape, "gripper": (1,), "object": (3,)}
    dtypes = {"joint_pos": "float32", "gripper": "float32", "object": "float32"}
    if cameras:
        shapes["cam"], dtypes["cam"] = CAM, "uint8"
    return RobotSpec(
        name="test-arm", action_mode="joint_delta", action_names=("a", "b", "c"), action_low=-np.ones(3),
        action_high=np.ones(3), joint_names=("j0", "j1", "j2"), joint_low=-np.ones(3), joint_high=np.ones(3),
        max_joint_velocity=np.ones(3), control_hz=10.0, obs_shapes=shapes, obs_dtypes=dtypes,
    )  # fmt: skip


def synthetic_store(
    path: Path,
    n: int = 32,
    *,
    cameras: bool = False,
    failures_end_closed: bool = False,
    failures: int | None = None,
) -> EpisodeStore:
    """Episodes of 20..39 steps with noisy joints. Successful ones close the gripper (gripper -> 1) over
    their last 25% of steps; failed ones keep it open (0), or close it too with ``failures_end_closed``
    (then nothing tells their ends apart). ``obs.object`` holds the label outright (privileged) and the
    camera's brightness is the gripper signal (dark 40 open, bright 200 closed). Episode ``i`` succeeds when
    ``i`` is even (or, with ``failures``, all but the first ``failures`` episodes)."""
    spec = arm_spec(cameras)
    store = EpisodeStore.create(path, step_schema(spec), fps=10.0, robot=spec.to_dict())
    rng = np.random.default_rng(1)
    for i in range(n):
        success = i >= failures if failures is not None else i % 2 == 0
        t = int(rng.integers(20, 40))
        closing = np.clip((np.arange(t) - 0.75 * t) / (0.1 * t), 0, 1)
        gripper = closing if (success or failures_end_closed) else np.zeros(t)
        steps = {
            "obs.joint_pos": rng.normal(size=(t, 3)),
            "obs.gripper": (gripper + rng.normal(scale=0.05, size=t))[:, None],
            "obs.object": np.full((t, 3), 1.0 if success else -1.0),
            "action": rng.uniform(-1, 1, size=(t, 3)),
        }
        if cameras:
            level = 40 + 160 * gripper + rng.normal(scale=10, size=t)
            frames = level[:, None, None, None] + rng.normal(scale=10, size=(t, *CAM))
            steps["obs.cam"] = np.clip(frames, 0, 255).astype(np.uint8)
        store.append_episode(steps, source="demo", success=success, task="synthetic")
    return store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward")
    store = synthetic_store(root / "s.zarr", 32)
    report = train_classifier(store, root / "clf", seed=0, progress=False)
    return store, report, root / "clf"


# ------------------------------------------------------------------------------ labels and the split


def test_final_window_and_step_labels_follow_the_documented_rule():
    # k = max(3, ceil(0.1 * L)): L=20 -> 3, L=35 -> 4 (ceil 3.5), L=2 -> 2 (capped at L).
    assert [final_window(n, 0.1, 3) for n in (20, 35, 2)] == [3, 4, 2]
    labels, used = label_steps(20, True, 3)
    # successful, L=20, k=3: steps 17..19 positive, 14..16 left out, 0..13 negative.
    np.testing.assert_array_equal(labels, [0] * 17 + [1] * 3)
    np.testing.assert_array_equal(used, [True] * 14 + [False] * 3 + [True] * 3)
    labels, used = label_steps(20, False, 3)
    assert labels.sum() == 0 and used.all()


def test_split_is_by_episode_stratified_and_seeded():
    success = np.array([True] * 8 + [False] * 4)
    train, test = split_episodes(success, 0.25, seed=3)
    assert sorted([*train, *test]) == list(range(12)) and not set(train) & set(test)
    # 25% of 8 successes = 2, of 4 failures = 1.
    assert success[test].sum() == 2 and (~success[test]).sum() == 1
    again = split_episodes(success, 0.25, seed=3)
    np.testing.assert_array_equal(test, again[1])
    # one failure only: it stays in training, so nothing held out measures false positives
    one_failure = np.array([True] * 5 + [False])
    _, test = split_episodes(one_failure, 0.25, seed=0)
    assert one_failure[test].all() and len(test) == 1  # round(0.25 * 5) = 1 success held out


# ------------------------------------------------------------------------------ training and metrics


def test_classifier_separates_the_signal_on_held_out_episodes(trained):
    store, report, path = trained
    # default features: every low-dim obs but the privileged obs.object (which holds the label outright)
    assert report.features == ("joint_pos", "gripper")
    held = report.held_out
    assert held["episodes"] == 8 and held["successes"] == 4 and held["failures"] == 4  # 25% of 16 + 16
    assert held["false_positive_rate"] == 0.0 and held["false_negative_rate"] == 0.0
    assert held["accuracy"] == 1.0
    assert set(report.held_out_episodes).isdisjoint(report.train_episodes)
    config = json.loads((path / "classifier.json").read_text())
    assert config["held_out"]["false_positive_rate"] == 0.0
    assert config["store"] == str(store.path) and config["low_dim"] == ["joint_pos", "gripper"]
    assert len(config["weights_sha256"]) == 64
    assert set(config["normalisation"]) == {"joint_pos", "gripper"}


def test_training_is_seeded(trained, tmp_path):
    store, report, _ = trained
    again = train_classifier(store, tmp_path / "again", seed=0, progress=False)
    assert again.held_out["per_episode"] == report.held_out["per_episode"]


def test_save_load_round_trip_gives_identical_probabilities(trained, tmp_path):
    store, report, path = trained
    clf = load_classifier(path, max_false_positive=0.0)
    assert clf.features == ("joint_pos", "gripper")
    for row in report.held_out["per_episode"]:
        ok, p = clf.episode_success(store.episode(row["episode"]))
        assert p == pytest.approx(row["probability"], abs=1e-6)  # measured in memory before saving
        assert ok == row["success"]
    clf.save(tmp_path / "copy")
    copy = load_classifier(tmp_path / "copy", max_false_positive=0.0)
    steps = store.episode(3)
    np.testing.assert_array_equal(clf.step_probabilities(steps), copy.step_probabilities(steps))
    # bare feature names (a robot's observation dict) read the same as the store's obs.* keys
    bare = {"joint_pos": steps["obs.joint_pos"], "gripper": steps["obs.gripper"]}
    assert clf.episode_success(bare) == clf.episode_success(steps)


def test_episode_success_names_a_missing_or_misshapen_feature(trained):
    store, _, path = trained
    clf = load_classifier(path, max_false_positive=0.0)
    steps = store.episode(0)
    with pytest.raises(ValueError, match=r"no observation obs\.gripper"):
        clf.episode_success({"obs.joint_pos": steps["obs.joint_pos"]})
    with pytest.raises(ValueError, match=r"obs\.joint_pos has per-step shape \(2,\), trained on \(3,\)"):
        clf.episode_success({**steps, "obs.joint_pos": steps["obs.joint_pos"][:, :2]})


def test_classifier_above_the_false_positive_limit_is_refused(tmp_path):
    # failures close the gripper at the end too: their final steps look like success, so the classifier
    # calls every held-out failure a success (false-positive rate 1.0)
    store = synthetic_store(tmp_path / "s.zarr", 24, failures_end_closed=True)
    report = train_classifier(store, tmp_path / "clf", features=["gripper"], progress=False)
    assert report.held_out["false_positive_rate"] == 1.0
    with pytest.raises(ClassifierRefused) as err:
        load_classifier(tmp_path / "clf", max_false_positive=0.2)
    message = str(err.value)
    assert str(tmp_path / "clf" / "classifier.json") in message
    assert "false-positive rate 1.000" in message and "limit 0.200" in message
    assert isinstance(err.value, ValueError)
    assert load_classifier(tmp_path / "clf", max_false_positive=1.0).features == ("gripper",)


def test_classifier_without_held_out_failures_is_refused(tmp_path):
    store = synthetic_store(tmp_path / "s.zarr", 10, failures=1)
    report = train_classifier(store, tmp_path / "clf", progress=False)
    assert report.held_out["failures"] == 0 and report.held_out["false_positive_rate"] is None
    with pytest.raises(ClassifierRefused, match="no failures, so its false-positive rate was never measured"):
        load_classifier(tmp_path / "clf", max_false_positive=1.0)


def test_a_modified_weights_file_is_an_error(trained, tmp_path):
    _, _, path = trained
    shutil.copytree(path, tmp_path / "clf")
    with open(tmp_path / "clf" / "model.safetensors", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ClassifierError, match="does not match the sha256"):
        load_classifier(tmp_path / "clf", max_false_positive=1.0)
    with pytest.raises(ClassifierError, match="no such file"):
        load_classifier(tmp_path / "nothing", max_false_positive=1.0)


def test_check_fits_refuses_a_missing_or_misshapen_feature(trained):
    _, _, path = trained
    clf = load_classifier(path, max_false_positive=0.0)
    clf.check_fits(arm_spec())  # observes joint_pos (3,) and gripper (1,): fits
    spec = arm_spec()
    lacking = RobotSpec(**{**spec.__dict__, "obs_shapes": {"joint_pos": (3,)}, "obs_dtypes": {}})
    with pytest.raises(ValueError, match=r"reads obs\.gripper, which test-arm does not observe"):
        clf.check_fits(lacking)
    with pytest.raises(ValueError, match=r"obs\.joint_pos of shape \(3,\).*shape \(4,\)"):
        clf.check_fits(arm_spec(joint_shape=(4,)))


def test_training_needs_successes_and_failures_and_known_features(tmp_path):
    store = synthetic_store(tmp_path / "s.zarr", 6)
    for i in range(store.n_episodes):
        store.relabel(i, True)
    with pytest.raises(ValueError, match="needs successful and failed episodes; it has 6 successful and 0"):
        train_classifier(store, tmp_path / "clf", progress=False)
    store.relabel(0, False)
    with pytest.raises(ValueError, match=r"no observation feature 'elbow'; the store has \['gripper'"):
        train_classifier(store, tmp_path / "clf", features=["elbow"], progress=False)
    assert not (tmp_path / "clf").exists()


def test_a_camera_only_classifier_learns_from_frames(tmp_path):
    store = synthetic_store(tmp_path / "s.zarr", 24, cameras=True)
    report = train_classifier(store, tmp_path / "clf", features=["obs.cam"], epochs=20, progress=False)
    assert report.features == ("cam",)
    assert report.held_out["false_positive_rate"] == 0.0 and report.held_out["false_negative_rate"] == 0.0
    clf = load_classifier(tmp_path / "clf", max_false_positive=0.0)
    assert clf.episode_success(store.episode(0))[0] and not clf.episode_success(store.episode(1))[0]


def test_classifier_on_a_scripted_lift_store(tmp_path):
    """Real robosuite Lift episodes from the noisy scripted expert, cut at 60 steps so that some fail."""
    from gipo_robot.sim.experts import record_demos

    store = record_demos(tmp_path / "lift.zarr", "Lift", 24, noise=1.0, seed=0, horizon=60)
    success = store.meta_table()["success"]
    assert 3 <= success.sum() <= 21  # a mix (measured: 7 of 24 succeed)
    report = train_classifier(store, tmp_path / "clf", progress=False)
    assert "object" not in report.features and "robot0_gripper_qpos" in report.features
    assert report.held_out["failures"] >= 2 and report.held_out["successes"] >= 1
    assert report.held_out["false_positive_rate"] <= 0.25  # measured 0.0 (0 of 4)
    assert report.held_out["false_negative_rate"] <= 0.5  # measured 0.0 (0 of 2)


# ------------------------------------------------------------------------------ the command


def test_train_reward_command_json(trained, tmp_path):
    store, _, _ = trained
    out = subprocess.run(
        [EXE, "train-reward", store.path, "--out", str(tmp_path / "clf"), "--feature", "gripper", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)  # exactly one object on stdout
    assert result["features"] == ["gripper"] and result["held_out"]["false_positive_rate"] == 0.0
    assert "per_episode" not in result["held_out"]
    assert (tmp_path / "clf" / "model.safetensors").is_file()
    bad = subprocess.run(
        [EXE, "train-reward", store.path, "--out", str(tmp_path / "x"), "--feature", "elbow", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "no observation feature 'elbow'" in json.loads(bad.stdout)["error"]
