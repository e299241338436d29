"""The Ray vector env on a local Ray instance: equals the in-process envs, replaces a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from gipo_robot.sim.ray_backend import connect  # noqa: E402
from gipo_robot.sim.robosuite_env import SimError  # noqa: E402
from gipo_robot.sim.vector import BACKENDS, WorkerLostError, make_vector_env  # noqa: E402

N, W, T, HORIZON = 3, 2, 14, 6  # 3 envs on 2 workers (2 + 1); a 6-step horizon: two auto-resets per env


@pytest.fixture(scope="module")
def local_ray():
    connect(num_cpus=2)  # a local Ray, pinned to 127.0.0.1
    yield
    ray.shutdown()


def test_a_local_ray_stays_on_loopback(local_ray):
    # Ray would otherwise advertise (and bind its servers to) the machine's network address.
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


def test_a_local_ray_starts_without_printing_its_own_log_lines():
    # Ray's INFO "Started a local Ray instance" and its token-authentication WARNING are not ours to print.
    code = "from gipo_robot.sim.ray_backend import connect, ray\nconnect(num_cpus=1)\nray.shutdown()\n"
    code += "print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok"]
    assert "Ray" not in result.stderr and "ray" not in result.stderr, result.stderr


def _run(venv, actions: np.ndarray, seed: int) -> dict[str, list]:
    """Everything a rollout sees: observations, rewards, episode ends, final observations and seeds."""
    obs, infos = venv.reset(seed=seed)
    got = {"obs": [obs["object"]], "reward": [], "done": [], "final": [], "seeds": [i["seed"] for i in infos]}
    for k in range(len(actions)):
        obs, reward, terminated, truncated, infos = venv.step(actions[k])
        got["obs"].append(obs["object"])
        got["reward"].append(reward)
        got["done"].append(terminated | truncated)
        for i, info in enumerate(infos):
            if "final_obs" in info:
                got["final"].append((k, i, info["final_obs"]["object"]))
                got["seeds"].append(info["seed"])
    return got


def _assert_same(a: dict[str, list], b: dict[str, list]) -> None:
    np.testing.assert_array_equal(np.array(a["obs"]), np.array(b["obs"]))
    np.testing.assert_array_equal(np.array(a["reward"]), np.array(b["reward"]))
    np.testing.assert_array_equal(np.array(a["done"]), np.array(b["done"]))
    assert a["seeds"] == b["seeds"]
    assert [(k, i) for k, i, _ in a["final"]] == [(k, i) for k, i, _ in b["final"]]
    for (_, _, x), (_, _, y) in zip(a["final"], b["final"], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference():
    """The in-process backend (itself equal to the subprocess one and to single envs: test_vector.py)."""
    actions = np.random.default_rng(0).uniform(-1, 1, (T, N, 7))
    with make_vector_env("Lift", N, backend="sync", horizon=HORIZON) as venv:
        return actions, _run(venv, actions, seed=20)


def test_ray_equals_in_process_envs_bit_for_bit(local_ray, reference):
    actions, ref = reference
    with make_vector_env("Lift", N, backend="ray", backend_options={"workers": W}, horizon=HORIZON) as venv:
        assert venv.slices == [(0, 2), (2, 3)]  # array_split of 3 envs over 2 workers
        assert venv.num_envs == N and venv.single_action_space.shape == (7,)
        assert venv.robot_spec.name == "sim:Lift" and venv.robot_spec.action_dim == 7
        got = _run(venv, actions, seed=20)
    # Every env ends an episode at steps 6 and 12 (horizon 6, 14 steps): 2 x 3 = 6 auto-resets.
    assert len(ref["final"]) == 6
    _assert_same(got, ref)


def test_killed_worker_is_replaced_and_the_next_reset_starts_clean(local_ray, reference):
    actions, ref = reference
    options = {"workers": W, "max_restarts": 1}
    with make_vector_env("Lift", N, backend="ray", backend_options=options, horizon=HORIZON) as venv:
        venv.reset(seed=20)
        venv.step(actions[0])
        pids = venv.worker_pids()
        os.kill(pids[1], signal.SIGKILL)
        with pytest.raises(WorkerLostError, match=r"worker\(s\) \[1\] died during step") as lost:
            venv.step(actions[1])
        assert lost.value.restarts == venv.restarts == 1
        new_pids = venv.worker_pids()
        assert new_pids[0] == pids[0] and new_pids[1] != pids[1]  # only the dead worker was replaced
        # A fresh reset with the same seed replays the reference exactly, replacement included.
        _assert_same(_run(venv, actions, seed=20), ref)
        # max_restarts=1 is used up: the next death is final.
        os.kill(new_pids[0], signal.SIGKILL)
        with pytest.raises(SimError, match="more than max_restarts=1") as final:
            venv.reset(seed=20)
        assert not isinstance(final.value, WorkerLostError)


def test_ray_is_registered_but_imported_only_when_used():
    assert "ray" in BACKENDS
    code = "import sys, gipo_robot.sim.vector, gipo_robot.train.finetune; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_ray_names_the_extra():
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what an install without the extra looks like
        "from gipo_robot.sim.vector import make_vector_env\n"
        "try:\n    make_vector_env('Lift', 1, backend='ray')\n"
        "except ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install gipo-robot[ray]" in out.stdout


def test_bad_worker_counts(local_ray):
    with pytest.raises(ValueError, match=r"workers must be between 1 and num_envs \(2\), got 3"):
        make_vector_env("Lift", 2, backend="ray", backend_options={"workers": 3})
