"""The core installs and runs without the simulator (issue 26): robosuite and numba are the ``[sim]`` extra.

Each test runs a fresh interpreter. ``without_sim`` puts a ``sitecustomize`` on its path that makes robosuite,
mink and numba unimportable, as in an environment where ``pip install gipo-robot`` ran without ``[sim]``
(the LeRobot venv is such an environment for real: ``make test-lerobot`` runs the core tests there).
"""

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

BLOCKER = """
import importlib.abc, sys
class _NoSim(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"robosuite", "mink", "numba"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoSim())
"""


@pytest.fixture
def without_sim(tmp_path):
    """An environment for a subprocess in which the simulator's packages cannot be imported."""
    site = tmp_path / "nosim"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": str(site)}


def python(code: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_imports_neither_torch_nor_the_simulator():
    done = python(
        """
        import contextlib, io, json, sys
        from gipo_robot.cli.main import run
        with contextlib.redirect_stdout(io.StringIO()):
            code = run(["--help"])
        heavy = {"torch", "robosuite", "mujoco", "numba", "zarr", "matplotlib", "cv2"}
        print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in heavy)]))
        """
    )
    assert done.returncode == 0, done.stderr
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    assert loaded == []


def test_the_core_works_without_the_simulator(without_sim, tmp_path):
    """Store, policy, objective and learner imports: write and read an episode, score a GIPO loss."""
    done = python(
        """
        import numpy as np, torch
        import gipo_robot.datasets, gipo_robot.hardware, gipo_robot.objectives
        import gipo_robot.loops, gipo_robot.teleop, gipo_robot.reward, gipo_robot.train.finetune
        from gipo_robot import objectives
        from gipo_robot.datasets import EpisodeStore, Feature, Schema
        from gipo_robot.policies.gaussian import GaussianPolicy
        try:
            import robosuite
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("robosuite should not be importable here")
        features = (Feature("obs.joint_pos", "float32", (6,)), Feature("action", "float32", (6,)))
        store = EpisodeStore.create("s.zarr", Schema(features), fps=10)
        store.append_episode({"obs.joint_pos": np.ones((5, 6), np.float32),
                              "action": np.zeros((5, 6), np.float32)})
        assert EpisodeStore.open("s.zarr").episode(0)["obs.joint_pos"].shape == (5, 6)
        logp = torch.zeros(8, requires_grad=True)
        loss, stats = objectives.gipo(logp, torch.full((8,), -0.5), torch.ones(8))
        loss.backward()
        print("core ok", float(stats["trust_weight_mean"]), GaussianPolicy.__name__)
        """,
        env=without_sim,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "core ok" in done.stdout


def test_a_simulator_command_names_the_extra(without_sim, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gipo_robot",
            "collect-demos",
            "--task",
            "Lift",
            "--episodes",
            "1",
            "--out",
            str(tmp_path / "demos.zarr"),
            "--json",
        ],
        env=without_sim,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["exit_code"] == 1
    assert "pip install 'gipo-robot[sim]'" in result["error"]
    assert "robosuite" in result["error"]
    assert not (tmp_path / "demos.zarr").exists()


def test_the_core_requirements_leave_numpy_2_open():
    """What `pip install gipo-robot` asks for: no simulator, and nothing that holds numpy below 2."""
    core = [r for r in metadata.requires("gipo-robot") if "extra ==" not in r]
    names = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip() for r in core}
    assert not names & {"robosuite", "mink", "numba"}
    numpy = next(r for r in core if r.startswith("numpy"))
    assert "<2" not in numpy.replace(" ", "")
    sim = [r for r in metadata.requires("gipo-robot") if 'extra == "sim"' in r]
    assert any(r.startswith("robosuite") for r in sim)
