"""Small deterministic episodes and stores shared by the dataset tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numcodecs
import numpy as np
import zarr

from gipo_robot.datasets import EpisodeStore, Schema, step_schema
from gipo_robot.datasets.from_diffusion_policy import register_image_codecs

STATE_DIM, ACTION_DIM, IMAGE = 5, 3, (8, 8, 3)


@dataclass(frozen=True)
class SmallSpec:
    """The part of a robot spec that ``step_schema`` reads: a 5-D state, one 8x8 RGB camera, 3-D actions."""

    obs_shapes: dict = field(default_factory=lambda: {"state": (STATE_DIM,), "cam": IMAGE})
    obs_dtypes: dict = field(default_factory=lambda: {"state": "float32", "cam": "uint8"})
    action_dim: int = ACTION_DIM


def small_schema(image_codec: str | None = None) -> Schema:
    """The step schema of :class:`SmallSpec`: obs.state (5,), obs.cam (8, 8, 3) uint8, action (3,), reward,
    terminated, truncated, success, timestamp, logp, policy_version."""
    return step_schema(SmallSpec(), image_codec=image_codec)


def make_episode(seed: int, length: int | None = None) -> dict[str, np.ndarray]:
    """A deterministic episode: the same seed always gives the same values (lengths 4..12)."""
    rng = np.random.default_rng(seed)
    t = int(length if length is not None else 4 + seed % 9)
    return {
        "obs.state": rng.normal(size=(t, STATE_DIM)).astype(np.float32),
        "obs.cam": rng.integers(0, 256, size=(t, *IMAGE), dtype=np.uint8),
        "action": rng.uniform(-1, 1, size=(t, ACTION_DIM)).astype(np.float32),
        "reward": rng.normal(size=t).astype(np.float32),
        "terminated": np.arange(t) == t - 1,
        "truncated": np.zeros(t, dtype=bool),
        "success": np.zeros(t, dtype=bool),  # the step schema's success flag, never set here
        "timestamp": np.arange(t) / 20.0,
        "logp": rng.normal(size=t).astype(np.float32),
        "policy_version": np.full(t, seed % 3, dtype=np.int64),
    }


def make_store(path: Path, n: int = 4, **create) -> EpisodeStore:
    """A store with ``n`` episodes from seeds 0..n-1; even ones are demos, odd ones successful rollouts."""
    store = EpisodeStore.create(path, small_schema(), fps=20.0, robot={"name": "panda", "dof": 7}, **create)
    for seed in range(n):
        rollout = seed % 2 == 1
        store.append_episode(
            make_episode(seed),
            source="rollout" if rollout else "demo",
            success=rollout,
            task="lift",
            start_time=1000.0 + seed,
            policy_version=seed % 3 if rollout else -1,
        )
    return store


def assert_episode_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value.astype(got[key].dtype), err_msg=key)


ENV_ARGS = {"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20, "robots": ["Panda"]}}


def write_robomimic(path, lengths=(5, 3, 7), *, shifted=True):
    """A small robomimic-layout file: low-dim and image obs, next_obs, actions, rewards, dones, states,
    an extra action_dict dataset, per-demo model XML, env_args and two filter keys."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(ENV_ARGS)
        data.attrs["total"] = sum(lengths)
        data.attrs["source_tag"] = "ph"
        for n, t in enumerate(lengths):
            demo = data.create_group(f"demo_{n}")
            demo.attrs["num_samples"] = t
            demo.attrs["model_file"] = f"<mujoco model='lift_{n}'><worldbody/></mujoco>"
            obs = {
                "object": rng.normal(size=(t + 1, 10)),
                "robot0_eef_pos": rng.normal(size=(t + 1, 3)).astype(np.float32),
                "agentview_image": rng.integers(0, 256, size=(t + 1, 8, 8, 3), dtype=np.uint8),
            }
            for key, values in obs.items():
                demo.create_dataset(f"obs/{key}", data=values[:t])
                nxt = values[1:].copy()
                if not shifted and key == "object":
                    nxt[0] += 1.0  # next_obs not derivable from obs
                demo.create_dataset(f"next_obs/{key}", data=nxt)
            demo.create_dataset("actions", data=rng.uniform(-1, 1, size=(t, 7)))
            demo.create_dataset("rewards", data=(np.arange(t) == t - 1).astype(np.float64))
            demo.create_dataset("dones", data=(np.arange(t) == t - 1).astype(np.int64))
            demo.create_dataset("states", data=rng.normal(size=(t, 12)))
            demo.create_dataset("action_dict/abs_pos", data=rng.normal(size=(t, 3)).astype(np.float32))
        f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_2"]))
        f.create_dataset("mask/valid", data=np.array([b"demo_1"]))


EXE = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the ``gipo-robot`` console script in ``cwd``."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def one_json_object(out: subprocess.CompletedProcess) -> dict:
    """The single JSON object a ``--json`` command printed (exactly one line on stdout)."""
    assert out.stdout.strip().count("\n") == 0, out.stdout
    return json.loads(out.stdout)


REPLAY_BUFFER_LENGTHS = (5, 3, 7)  # episode ends 5, 8, 15


def _umi_values() -> dict[str, np.ndarray]:
    """UMI-like arrays for the episodes of :data:`REPLAY_BUFFER_LENGTHS`: a camera, low-dim state, actions."""
    rng = np.random.default_rng(0)
    t = sum(REPLAY_BUFFER_LENGTHS)
    return {
        "camera0_rgb": rng.integers(0, 256, size=(t, 12, 10, 3), dtype=np.uint8),
        "robot0_eef_pos": rng.normal(size=(t, 3)).astype(np.float32),
        "robot0_gripper_width": rng.uniform(0, 0.08, size=(t, 1)).astype(np.float32),
        "action": rng.normal(size=(t, 7)).astype(np.float32),
        "n_contacts": rng.integers(0, 3, size=t).astype(np.int64),
    }


def write_replay_buffer(
    path, values: dict[str, np.ndarray] | None = None, *, extra_rows: int = 0, attrs=None
):
    """A UMI-style ``replay_buffer.zarr``; ``extra_rows`` appends rows past the last episode end."""
    from imagecodecs.numcodecs import Jpegxl

    register_image_codecs()
    values = _umi_values() if values is None else values
    root = zarr.open_group(str(path), mode="w", zarr_format=2, attributes=attrs or {})
    data, meta = root.create_group("data"), root.create_group("meta")
    for key, v in values.items():
        v = np.concatenate([v, v[:extra_rows]]) if extra_rows else v
        if key == "camera0_rgb":
            arr = data.create_array(
                key, shape=v.shape, chunks=(1, *v.shape[1:]), dtype=v.dtype, compressors=Jpegxl(lossless=True)
            )
        else:  # Diffusion Policy's default low-dim compressor
            blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
            arr = data.create_array(
                key, shape=v.shape, chunks=(4, *v.shape[1:]), dtype=v.dtype, compressors=blosc
            )
        arr[:] = v
    ends = meta.create_array(
        "episode_ends", shape=(len(REPLAY_BUFFER_LENGTHS),), dtype="int64", compressors=None
    )
    ends[:] = np.cumsum(REPLAY_BUFFER_LENGTHS)
    return values
