"""`gipo-robot collect-demos` writes scripted demos through the episode store and prints one JSON object."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from gipo_robot.cli import app


def test_collect_demos_writes_a_store(tmp_path):
    out = tmp_path / "demos.zarr"
    result = CliRunner().invoke(
        app,
        ["collect-demos", "--task", "Lift", "--episodes", "2", "--noise", "0.3", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and summary["success_rate"] == 1.0

    from gipo_robot.datasets.store import EpisodeStore

    store = EpisodeStore.open(out)
    assert store.n_episodes == 2 and store.n_steps == summary["steps"]
    ep = store.episode(1)
    assert ep["obs.robot0_eef_pos"].shape[1:] == (3,) and ep["action"].shape[1:] == (7,)
    assert ep["success"][-1] and ep["terminated"][-1]
    np.testing.assert_allclose(np.diff(ep["timestamp"]), 0.05)  # 20 Hz
    meta = store.episode_meta(1)
    assert meta.source == "demo" and meta.success and meta.extra["seed"] == 1


def test_collect_demos_writes_no_robosuite_log_line(tmp_path):
    # robosuite logs ~6 INFO/WARNING lines on import and make (a missing private macro file, robosuite_models,
    # mink, the controller file it loads); our terminal output is ours: none may reach the user's stderr.
    exe = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"
    out = tmp_path / "d.zarr"
    result = subprocess.run(
        [exe, "collect-demos", "--task", "Lift", "--episodes", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert result.returncode == 0, result.stderr
    assert out.exists() and "1/1 successful demos" in result.stdout
    leaked = [
        line
        for line in result.stderr.splitlines()
        if "robosuite" in line.lower() or "could not import" in line.lower()
    ]
    assert leaked == []


def test_collect_demos_renders_cameras_fast_unless_asked_for_exact(tmp_path):
    from gipo_robot.datasets.store import EpisodeStore

    qualities = {}
    for flags in ([], ["--render-quality", "exact"]):
        out = tmp_path / f"cam{len(flags)}.zarr"
        args = ["collect-demos", "--episodes", "1", "--camera", "agentview", "--image-size", "32"]
        result = CliRunner().invoke(app, [*args, "--out", str(out), *flags, "--json"])
        assert result.exit_code == 0, result.output
        store = EpisodeStore.open(out)
        assert store.episode(0)["obs.agentview_image"].shape[1:] == (32, 32, 3)
        qualities[len(flags)] = store.attrs["env"]["render_quality"]
    # the frames a vision policy trains on are the fast ones its evaluation and fine-tuning render
    assert qualities == {0: "fast", 2: "exact"}
    result = CliRunner().invoke(
        app, ["collect-demos", "--render-quality", "ultra", "--out", str(tmp_path / "x.zarr"), "--json"]
    )
    assert result.exit_code != 0 and "--render-quality must be one of exact, fast" in result.stdout
