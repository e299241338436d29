"""The whole training state of a fine-tuning run, saved after every iteration so a run resumes exactly.

``RUN/checkpoint/`` holds a policy checkpoint with its critic (:func:`gipo_robot.policies.save_policy`) plus
``trainer_state.safetensors`` (replay buffer tensors, optimiser moments, the sampling generator's state)
and ``trainer_state.json`` (progress counters, optimiser hyper-parameters). safetensors + JSON, never
pickle. ``RUN/metrics.csv`` is the per-iteration history, rewritten atomically.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from gipo_robot.policies.checkpoint import save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.replay import ReplayBuffer

__all__ = [
    "TrainerState",
    "load_trainer_state",
    "read_history",
    "save_trainer_state",
    "tensorboard_writer",
    "write_history",
]


def _optimizer_tensors(optim: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, Tensor], dict]:
    state = optim.state_dict()
    tensors, scalars = {}, {}
    for idx, s in state["state"].items():
        for name, value in s.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{idx}.{name}"] = value.contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _load_optimizer(
    optim: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optim.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_trainer_state(
    path: Path,
    *,
    policy: GaussianPolicy,
    critic: Critic,
    optims: dict[str, torch.optim.Optimizer],
    replay: ReplayBuffer,
    generator: torch.Generator,
    progress: dict[str, Any],
    provenance: dict[str, Any],
) -> None:
    """Write ``path/``: a policy checkpoint (with critic) and ``trainer_state.safetensors``/``.json``."""
    save_policy(path, policy, critic=critic, provenance=provenance)
    tensors = {f"replay.{k}": v for k, v in replay.to_tensors().items()}
    tensors["rng.torch"] = generator.get_state()
    meta: dict[str, Any] = {"progress": progress, "optimizers": {}}
    for name, optim in optims.items():
        t, m = _optimizer_tensors(optim, f"optim.{name}")
        tensors.update(t)
        meta["optimizers"][name] = m
    tmp = path / ".trainer_state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(path / "trainer_state.safetensors")
    tmp = path / ".trainer_state.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(path / "trainer_state.json")


@dataclass
class TrainerState:
    """What :func:`load_trainer_state` restores besides the policy and critic weights.

    Attributes:
        replay: the replay buffer as it was after the last finished iteration.
        progress: ``{"iteration", "env_steps", "launches"}`` counters.
    """

    replay: ReplayBuffer
    progress: dict[str, Any]


def load_trainer_state(
    path: Path, *, optims: dict[str, torch.optim.Optimizer], generator: torch.Generator
) -> TrainerState:
    """Read ``path/trainer_state.*``: restore the optimisers and the generator in place; return the rest."""
    tensors = load_file(str(path / "trainer_state.safetensors"))
    meta = json.loads((path / "trainer_state.json").read_text())
    replay = ReplayBuffer.from_tensors({k[7:]: v for k, v in tensors.items() if k.startswith("replay.")})
    generator.set_state(tensors["rng.torch"])
    for name, optim in optims.items():
        _load_optimizer(optim, tensors, meta["optimizers"][name], f"optim.{name}")
    progress = {"launches": 0, **meta["progress"]}
    return TrainerState(replay, progress)


def tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    tmp.replace(path)


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        rec: dict[str, Any] = {}
        for k, v in r.items():
            if v == "":
                continue
            try:
                rec[k] = int(v) if v.lstrip("-").isdigit() else float(v)
            except ValueError:
                rec[k] = v
        out.append(rec)
    return out
