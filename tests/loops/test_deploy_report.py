"""What deploy tells a person: rounded timing, and each kind of guard intervention with how much it changed
the commands (the JSON keeps full precision)."""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
from typer.testing import CliRunner

from gipo_robot.hardware.pacing import format_ms
from gipo_robot.loops.deploy import add_changes
from gipo_robot.policies import save_policy
from tests.loops.test_deploy import UP, constant_policy


def test_format_ms_rounds_for_people():
    # The line: "period error p50 3.899986041056014e-05 ms, p99 442.3033441396909 ms".
    assert format_ms(3.899986041056014e-05) == "0.00 ms"
    assert format_ms(0.0438) == "0.04 ms"
    assert format_ms(3.94) == "3.9 ms"
    assert format_ms(442.3033441396909) == "442 ms"
    assert format_ms(None) == "n/a"


def test_changes_of_episodes_combine_weighted_by_their_counts():
    # Episode 1: workspace on 3 steps, dz mean 0.01 m (max 0.02). Episode 2: on 1 step, dz 0.03, and dx
    # 0.004 (dx never changed in episode 1: a mean of 0 over its 3 steps). Over the run's 4 steps:
    # dz mean (3 * 0.01 + 1 * 0.03) / 4 = 0.015, max 0.03; dx mean (3 * 0 + 0.004) / 4 = 0.001.
    totals: dict = {}
    counts = {"workspace": 0}
    add_changes(totals, counts, {"workspace": {"dz": {"max": 0.02, "mean": 0.01}}}, {"workspace": 3})
    counts["workspace"] += 3
    second = {"dz": {"max": 0.03, "mean": 0.03}, "dx": {"max": 0.004, "mean": 0.004}}
    add_changes(totals, counts, {"workspace": second}, {"workspace": 1})
    assert totals["workspace"]["dz"] == pytest.approx({"max": 0.03, "mean": 0.015})
    assert totals["workspace"]["dx"] == pytest.approx({"max": 0.004, "mean": 0.001})


def test_deploy_prints_rounded_timing_and_what_the_guard_changed(tmp_path):
    # A policy asking for full +z (5 cm a step) for 30 steps from z = 1.01 m: the soft start cuts the first
    # steps (delta), then the box's ceiling at 1.3 m (workspace).
    from gipo_robot.cli import app
    from gipo_robot.sim.robot import SimRobot

    robot = SimRobot("Lift", horizon=50)
    names = list(robot.spec.action_names)
    robot.close()
    checkpoint = save_policy(tmp_path / "up", constant_policy({"robot0_eef_pos": [3]}, UP, names=names))
    args = ["deploy", str(checkpoint), "--robot", "sim:Lift?horizon=50", "--max-steps", "30",
            "--out", str(tmp_path / "d.zarr")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.output
    timing = re.search(r"period error p50 (\S+) ms, p99 (\S+) ms, \d+ missed", text)
    assert timing, text
    for value in timing.groups():  # 2 decimals below 1 ms, 1 below 100 ms, none above
        assert re.fullmatch(r"\d+(\.\d{1,2})?", value), value
    assert re.search(r"guard: delta on \d+ of 30 steps \(largest change dz [\d.]+ mm, mean [\d.]+ mm\)", text)
    assert re.search(r"workspace on \d+ of 30 steps \(largest change dz [\d.]+ mm", text), text
    episode = r"episode 0: 30 steps, success False, period error p99 [\d.]+ ms, \d+ missed"
    assert re.search(episode + r", guard: delta \d+, workspace \d+", text), text
    as_json = CliRunner().invoke(app, [*args, "--json"])
    summary = json.loads(as_json.stdout)
    changes = summary["intervention_changes"]
    assert changes["workspace"]["dz"]["max"] > 0.001 and summary["interventions"]["workspace"] > 0
    assert summary["episodes"][0]["intervention_changes"].keys() == {"delta", "workspace"}


def test_committing_between_episodes_is_no_watchdog_lapse(tmp_path, monkeypatch, caplog):
    # A 10 Hz arm with a 0.2 s watchdog (2 periods); committing an episode takes 0.5 s (a big store on a
    # slow disk). Before, the arm was left tracking its last target while the store wrote, and the
    # watchdog reported "no action for 200 ms, holding" after every episode; now deploy holds first.
    import time

    from gipo_robot.datasets.writer import EpisodeWriter
    from gipo_robot.hardware.safety import SafetyConfig
    from gipo_robot.loops.deploy import DeployConfig, deploy, open_deploy_store
    from tests.hardware.test_safety import RecordingArm

    commit = EpisodeWriter.commit

    def slow_commit(self, **meta):
        time.sleep(0.5)
        return commit(self, **meta)

    monkeypatch.setattr(EpisodeWriter, "commit", slow_commit)
    arm = RecordingArm()
    policy = constant_policy({"joint_pos": [3]}, [0.0, 0.0, -0.2])
    store = open_deploy_store(tmp_path / "s.zarr", arm.spec)
    config = DeployConfig(episodes=2, max_steps=3, safety=SafetyConfig(watchdog_periods=2.0))
    with caplog.at_level("WARNING", logger="gipo_robot"):
        result = deploy(policy, arm, store, config)
    assert result.error is None and store.n_episodes == 2
    assert not [r for r in caplog.records if "watchdog" in r.getMessage()]
    assert arm.holds >= 2  # held at the end of each episode
