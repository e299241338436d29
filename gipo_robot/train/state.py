"""The whole training state of a fine-tuning run, saved after every iteration so a run resumes exactly.

``RUN/checkpoint/`` holds a policy checkpoint with its critic (:func:`gipo_robot.policies.save_policy`) plus
``trainer_state.safetensors`` (replay buffer tensors, optimiser moments, the sampling generator's state),
optionally ``episodes.safetensors`` (the last iteration's episodes, which the run appends to its store only
after the checkpoint is saved: a resume finishes those appends) and ``trainer_state.json`` (progress counters,
optimiser hyper-parameters, the episodes' labels, the sha256 of the tensor files). safetensors + JSON, never
pickle; every tensor is saved from the CPU, and a resume loads the optimiser state onto the device of the
parameters it was built for (``learner_device``). ``RUN/metrics.csv`` is the per-iteration history,
rewritten atomically.

A checkpoint is one unit: :func:`save_trainer_state` writes every file into ``checkpoint.tmp-<pid>/``, fsyncs
them, then swaps the directory in with renames::

    checkpoint.prev/ -> checkpoint.trash-<pid>/     (the one before last, removed at the end)
    checkpoint/      -> checkpoint.prev/            (kept: the previous good checkpoint)
    checkpoint.tmp-<pid>/ -> checkpoint/            (the commit)

so a process killed at any moment leaves ``checkpoint/`` either the old iteration's or the new one's, never a
mix; killed between the last two renames, it leaves no ``checkpoint/`` and :func:`recover_checkpoint` puts
``checkpoint.prev/`` back. Every save step names a crash point (:data:`SAVE_STEPS`; :func:`crash_point`): with
``GIPO_CRASH_AT=STEP@N`` in its environment a process SIGKILLs itself at that step of the save whose
progress counter (``iteration``, or the robot learner's ``rounds``) is N (``STEP`` alone: every save). Tests
use it; nothing else sets it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file, save_file
from torch import Tensor

from gipo_robot.policies.checkpoint import (
    CheckpointError,
    file_sha256,
    fsync_path,
    read_config,
    save_policy,
)
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.replay import ReplayBuffer

__all__ = [
    "SAVE_STEPS",
    "TrainerState",
    "crash_point",
    "load_trainer_state",
    "read_history",
    "recover_checkpoint",
    "save_trainer_state",
    "tensorboard_writer",
    "write_history",
]

TENSORS_FILE = "trainer_state.safetensors"
EPISODES_FILE = "episodes.safetensors"
META_FILE = "trainer_state.json"
CRASH_ENV = "GIPO_CRASH_AT"
SAVE_STEPS = ("policy", "trainer_state", "retired", "swapped")
"""The crash points of a save: the policy files written into the temporary directory; every file written
and synced; the old checkpoint moved to ``checkpoint.prev`` (no ``checkpoint/`` now); the new one in
place (the one before last not yet removed)."""


def _optimizer_tensors(optim: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, Tensor], dict]:
    state = optim.state_dict()
    tensors, scalars = {}, {}
    for idx, s in state["state"].items():
        for name, value in s.items():
            if isinstance(value, Tensor):  # saved from the CPU; loading moves them to the parameters' device
                tensors[f"{prefix}.{idx}.{name}"] = value.detach().cpu().contiguous()
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
    episodes: list[dict[str, Any]] | None = None,
    extra: dict[str, Tensor] | None = None,
) -> None:
    """Write ``path/`` as one unit (see the module docstring): a policy checkpoint (with critic),
    ``trainer_state.safetensors``/``.json`` and ``episodes`` (each ``{"steps": {key: (L, ...) array}, ...}``,
    the rest JSON) when given; ``extra`` tensors of the caller's (e.g. the lagged policy versions) go into
    the trainer state under ``extra.``; the checkpoint it replaces becomes ``path.prev/``."""
    path, counter = Path(path), progress.get("iteration", progress.get("rounds"))
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_policy(tmp, policy, critic=critic, provenance=provenance)
    crash_point("policy", counter)
    tensors = {f"replay.{k}": v for k, v in replay.to_tensors().items()}
    tensors["rng.torch"] = generator.get_state()
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    meta: dict[str, Any] = {"progress": progress, "optimizers": {}}
    for name, optim in optims.items():
        t, m = _optimizer_tensors(optim, f"optim.{name}")
        tensors.update(t)
        meta["optimizers"][name] = m
    save_file(tensors, str(tmp / TENSORS_FILE))
    meta["sha256"] = {TENSORS_FILE: file_sha256(tmp / TENSORS_FILE)}
    if episodes:
        save_arrays({f"{i}.{k}": np.ascontiguousarray(v) for i, e in enumerate(episodes)
                     for k, v in e["steps"].items()}, str(tmp / EPISODES_FILE))  # fmt: skip
        meta["episodes"] = [{k: v for k, v in e.items() if k != "steps"} for e in episodes]
        meta["sha256"][EPISODES_FILE] = file_sha256(tmp / EPISODES_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    for file in tmp.iterdir():
        fsync_path(file)
    fsync_path(tmp)
    crash_point("trainer_state", counter)
    prev, trash = _previous(path), path.with_name(f"{path.name}.trash-{os.getpid()}")
    if prev.exists():
        os.rename(prev, trash)
    if path.exists():
        os.rename(path, prev)
    crash_point("retired", counter)
    os.rename(tmp, path)  # the commit
    fsync_path(path.parent)
    crash_point("swapped", counter)
    shutil.rmtree(trash, ignore_errors=True)


def recover_checkpoint(path: Path) -> bool:
    """Make ``path`` the checkpoint to resume from; return whether there is one.

    Undoes a save that a kill interrupted (``path.prev`` goes back to ``path`` when ``path`` is missing),
    removes the temporary copies a kill left beside it, and checks every file of the checkpoint against the
    sha256 its JSON records.

    Raises:
        CheckpointError: a checkpoint whose files do not match their sha256 or do not parse, naming the
            file, saying that it is damage (not an interrupted save), and naming the previous checkpoint
            when that one is intact.
    """
    path, prev = Path(path), _previous(Path(path))
    if not path.exists() and prev.exists():
        os.rename(prev, path)
    for pattern in (f"{path.name}.tmp-*", f"{path.name}.trash-*"):
        for leftover in path.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    if not (path / META_FILE).exists():
        return False
    try:
        _check_files(path)
    except CheckpointError as err:
        note = ""
        try:
            counter = _check_files(prev)
        except CheckpointError:  # none, or damaged too
            pass
        else:
            note = (f" The previous checkpoint {prev} (after {counter}) is intact: to resume from it, "
                    f"replace {path} with it (rm -r {path} && mv {prev} {path}).")  # fmt: skip
        raise CheckpointError(
            f"{path} is damaged: {err}. Checkpoints are swapped in whole, so this is not an interrupted "
            f"save: a file changed after it was written (a disk fault, or an edit).{note}"
        ) from None
    return True


@dataclass
class TrainerState:
    """What :func:`load_trainer_state` restores besides the policy and critic weights.

    Attributes:
        replay: the replay buffer as it was after the last finished iteration.
        progress: ``{"iteration", "env_steps", "launches"}`` counters, and ``store_episodes`` (the rollout
            store's episode count the checkpoint accounts for) where the run recorded it.
        episodes: the episodes saved with the checkpoint, as :func:`save_trainer_state` took them.
        extra: the ``extra`` tensors :func:`save_trainer_state` took.
    """

    replay: ReplayBuffer
    progress: dict[str, Any]
    episodes: list[dict[str, Any]]
    extra: dict[str, Tensor] = field(default_factory=dict)


def load_trainer_state(
    path: Path, *, optims: dict[str, torch.optim.Optimizer], generator: torch.Generator
) -> TrainerState:
    """Read ``path/trainer_state.*``: restore the optimisers and the generator in place; return the rest.

    Raises:
        CheckpointError: a file that is missing, unreadable or does not match its sha256 (naming it).
    """
    path = Path(path)
    meta = _read_meta(path)
    try:
        tensors = load_file(str(path / TENSORS_FILE))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path / TENSORS_FILE} is not a readable safetensors file: {e}") from None
    replay = ReplayBuffer.from_tensors({k[7:]: v for k, v in tensors.items() if k.startswith("replay.")})
    generator.set_state(tensors["rng.torch"])
    for name, optim in optims.items():
        _load_optimizer(optim, tensors, meta["optimizers"][name], f"optim.{name}")
    progress = {"launches": 0, **meta["progress"]}
    episodes = [dict(e, steps={}) for e in meta.get("episodes", [])]
    if episodes:
        for key, value in load_arrays(str(path / EPISODES_FILE)).items():
            i, name = key.split(".", 1)
            episodes[int(i)]["steps"][name] = value
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return TrainerState(replay, progress, episodes, extra)


def _previous(path: Path) -> Path:
    """Where the checkpoint before ``path``'s is kept."""
    return path.with_name(f"{path.name}.prev")


def crash_point(step: str, counter: int | None) -> None:
    """SIGKILL this process here when ``GIPO_CRASH_AT`` is ``step`` or ``step@counter`` (a test hook)."""
    want = os.environ.get(CRASH_ENV)
    if not want:
        return
    name, _, count = want.partition("@")
    if name == step and (not count or int(count) == counter):
        os.kill(os.getpid(), signal.SIGKILL)


def _read_meta(path: Path) -> dict[str, Any]:
    """``trainer_state.json``, the tensor files checked against the sha256 it records."""
    file = path / META_FILE
    try:
        meta = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None
    if not (path / TENSORS_FILE).is_file():
        raise CheckpointError(f"{path / TENSORS_FILE} is missing")
    for name, expected in meta.get("sha256", {}).items():  # none: saved before they were recorded
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing")
        if file_sha256(file) != expected:
            raise CheckpointError(f"{file} does not match the sha256 in {META_FILE}")
    return meta


def _check_files(path: Path) -> str:
    """Check every file of the checkpoint at ``path`` against its sha256; return its progress, in words."""
    meta = _read_meta(path)
    config = read_config(path)
    for name, expected in config.get("weights_sha256", {}).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing")
        if file_sha256(file) != expected:
            raise CheckpointError(f"{file} does not match the sha256 in its config.json")
    progress = meta.get("progress", {})
    if "iteration" in progress:
        return f"iteration {progress['iteration']}"
    return f"round {progress.get('rounds')}"


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
