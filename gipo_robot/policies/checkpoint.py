"""Policy checkpoints: safetensors weights + a JSON config. Loading never unpickles anything.

A checkpoint is a directory::

    policy/
      config.json          {"format": "gipo-robot-policy", "format_version": 1, "policy_type": "gaussian",
                            "policy": PolicyConfig, "weights_sha256": ..., "provenance": {...}}
      model.safetensors    the policy's parameters and buffers (normalisation included)
      critic.safetensors   optional: a Critic, with the policy's PolicyConfig unless config.json has a
                           "critic" section (a critic that reads other features, e.g. privileged state)

``weights_sha256`` makes a modified or truncated weights file a clear error instead of a silently different
policy. ``provenance`` is free-form JSON: what the policy was trained on, with which settings and commit.

Policy types: ``policy_type`` names the class that wrote the checkpoint and :data:`POLICY_TYPES` maps it to
the function that loads it back, as a ``"module:function"`` string imported only when used, so an adapter
(and its optional extra, e.g. ``lerobot``) is imported only for its own checkpoints. A new policy type is
one registration line there plus a ``policy_type`` class attribute on its class.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from gipo_robot.policies.head import GaussianHead

__all__ = [
    "POLICY_TYPES",
    "CheckpointError",
    "check_spec",
    "file_sha256",
    "load_critic",
    "load_gaussian_policy",
    "load_policy",
    "load_weights",
    "policy_type",
    "read_config",
    "save_policy",
]

FORMAT = "gipo-robot-policy"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CRITIC_FILE = "critic.safetensors"

POLICY_TYPES: dict[str, str] = {
    "gaussian": ".checkpoint:load_gaussian_policy",
    "lerobot": ".from_lerobot:load_finetuned",
}
"""Policy type (a checkpoint's ``policy_type``) -> ``"module:function"`` that loads it (a module path starting
with ``.`` is relative to ``gipo_robot.policies``). Every loader is ``(path, *, low_dim=None, images=None,
action_dim=None) -> policy``, checks the policy against that spec and raises :class:`CheckpointError`."""


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded (missing, corrupt, tampered, or for another spec)."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_policy(
    path: str | Path,
    policy: GaussianHead,
    *,
    critic: Critic | None = None,
    provenance: dict | None = None,
) -> Path:
    """Write ``policy`` (and optionally ``critic``) as a checkpoint directory; returns its path.

    The config records the policy's ``policy_type`` (its class attribute, a key of :data:`POLICY_TYPES`),
    and the critic's own architecture as ``"critic"`` where it differs from the policy's (an asymmetric
    critic: :func:`load_critic` rebuilds it from there).

    It is written whole into a fresh folder beside ``path`` (``.<name>.tmp-<pid>``), flushed to disk and
    renamed into place. Where ``path`` exists, everything else its folder holds (a BC run's ``metrics.csv``
    and ``tb/``) is hard-linked into the new folder first (copied where links are not supported), the old
    folder is moved aside (``.<name>.old-<pid>``) and removed after the swap. So a kill at any moment leaves
    the old checkpoint or the new one, never a mix (a mix used to read as "modified or truncated"); a kill
    between the two renames leaves the old folder beside ``path``, which :func:`read_config` names.
    """
    path = Path(path)
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    files = {WEIGHTS_FILE: policy}
    if critic is not None:
        files[CRITIC_FILE] = critic
    digests = {}
    for name, module in files.items():
        save_file(_state(module), str(tmp / name), metadata={"format": FORMAT})
        digests[name] = file_sha256(tmp / name)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "policy_type": policy.policy_type,
        "policy": asdict(policy.config),
        "weights_sha256": digests,
        "provenance": provenance or {},
    }
    if critic is not None and critic.config != policy.config:
        config["critic"] = asdict(critic.config)
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    for file in (*tmp.iterdir(), tmp):
        fsync_path(file)
    if target.is_dir():  # the folder's other entries go with it
        for entry in target.iterdir():
            if entry.name not in (CONFIG_FILE, WEIGHTS_FILE, CRITIC_FILE):
                _link_tree(entry, tmp / entry.name)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    fsync_path(target.parent)
    return path


def _link_tree(src: Path, dst: Path) -> None:
    """``src`` (a file or a folder tree) at ``dst`` as hard links: no data copied (copies where the
    filesystem has no hard links)."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(str(src), str(dst))


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk (a folder: its entries, so a rename survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_config(path: str | Path) -> dict:
    """The checkpoint's JSON config, validated for format; raises :class:`CheckpointError` naming the file."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        old = sorted(Path(path).parent.glob(f".{Path(path).name}.old-*"))
        hint = f" (a save was interrupted: the previous checkpoint is at {old[-1]})" if old else ""
        raise CheckpointError(f"no policy checkpoint at {path}: {CONFIG_FILE} is missing{hint}")
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a gipo-robot policy checkpoint (format is not {FORMAT!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{file} has format_version {config.get('format_version')}; this version reads {FORMAT_VERSION}"
        )
    return config


def policy_type(config: dict, *, where: str = "checkpoint") -> str:
    """The policy type of a checkpoint's config (see :func:`read_config`), a key of :data:`POLICY_TYPES`.

    Checkpoints written before ``policy_type`` was recorded are ``"gaussian"``, or ``"lerobot"`` when their
    policy section has a ``lerobot_type``.

    Raises:
        CheckpointError: the type is not registered (naming the known ones).
    """
    kind = config.get("policy_type")
    if kind is None:
        kind = "lerobot" if "lerobot_type" in config.get("policy", {}) else "gaussian"
    if kind not in POLICY_TYPES:
        raise CheckpointError(
            f"{where}: unknown policy_type {kind!r}; known: {', '.join(sorted(POLICY_TYPES))}"
        )
    return kind


def _resolve(spec: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` string names, importing its module now."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module, __package__), name)


def load_weights(module: nn.Module, path: str | Path, file_name: str, config: dict) -> None:
    """Load ``path / file_name`` into ``module`` after checking its sha256 against ``config`` (the
    checkpoint's :func:`read_config`) and its tensor names and shapes against the module's.

    Raises:
        CheckpointError: a missing, modified, truncated or unreadable file, or weights for another
            architecture (naming the tensors).
    """
    path = Path(path)
    file = path / file_name
    if not file.is_file():
        raise CheckpointError(f"{file} is missing")
    expected = config.get("weights_sha256", {}).get(file_name)
    if expected is None:
        raise CheckpointError(f"{path / CONFIG_FILE} records no sha256 for {file_name}")
    if file_sha256(file) != expected:
        raise CheckpointError(
            f"{file} does not match the sha256 in {CONFIG_FILE}: it was modified or truncated"
        )
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file} is not a readable safetensors file: {e}") from None
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{file} does not fit the architecture: missing {missing}, unexpected {unexpected}"
        )
    wrong = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if state[k].shape != own[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{file} has tensors of the wrong shape: {wrong}")
    module.load_state_dict(state)


def check_spec(
    config: PolicyConfig,
    *,
    low_dim: dict[str, list[int]] | None = None,
    images: dict[str, list[int]] | None = None,
    action_dim: int | None = None,
    where: str = "checkpoint",
) -> None:
    """Raise :class:`CheckpointError` if the policy does not fit the given observation/action spec.

    Every observation feature the policy reads must be present with the same shape (extra features in the
    spec are fine: the policy ignores them); the action dimension must match.
    """
    problems = []
    for kind, wanted, have in (("low-dim", config.low_dim, low_dim), ("image", config.images, images)):
        if have is None:
            continue
        for name, shape in wanted.items():
            if name not in have:
                problems.append(f"{kind} feature {name!r} is not provided")
            elif list(have[name]) != list(shape):
                problems.append(
                    f"{kind} feature {name!r} has shape {list(have[name])}, the policy expects {shape}"
                )
    if action_dim is not None and action_dim != config.action_dim:
        problems.append(f"action dimension is {action_dim}, the policy outputs {config.action_dim}")
    if problems:
        raise CheckpointError(f"{where} does not fit this robot/task: " + "; ".join(problems))


def load_policy(
    path: str | Path,
    *,
    low_dim: dict[str, list[int]] | None = None,
    images: dict[str, list[int]] | None = None,
    action_dim: int | None = None,
) -> GaussianHead:
    """Load a policy checkpoint of any registered type (:data:`POLICY_TYPES`); optionally check it against an
    observation/action spec.

    Raises:
        CheckpointError: missing or corrupt files, an unknown policy type, a weights file that does not match
            its recorded hash, weights that do not fit the recorded architecture, or a spec mismatch (naming
            the feature).
        ImportError: the policy type needs an optional extra that is not installed (naming the extra).
    """
    path = Path(path)
    kind = policy_type(read_config(path), where=str(path / CONFIG_FILE))
    loader = _resolve(POLICY_TYPES[kind])
    return loader(path, low_dim=low_dim, images=images, action_dim=action_dim)


def legacy_policy_section(section: dict[str, Any]) -> dict[str, Any]:
    """A saved ``policy`` section as today's :class:`PolicyConfig` reads it: camera policies saved before
    ``image_pool`` existed pooled their feature maps by the mean."""
    if section.get("images") and "image_pool" not in section:
        return {**section, "image_pool": "mean"}
    return section


def load_gaussian_policy(
    path: str | Path,
    *,
    low_dim: dict[str, list[int]] | None = None,
    images: dict[str, list[int]] | None = None,
    action_dim: int | None = None,
) -> GaussianPolicy:
    """Load a :class:`GaussianPolicy` checkpoint (policy type ``"gaussian"``); see :func:`load_policy`."""
    path = Path(path)
    config = read_config(path)
    try:
        policy_config = PolicyConfig(**legacy_policy_section(config["policy"]))
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path / CONFIG_FILE}: invalid 'policy' section: {e}") from None
    check_spec(
        policy_config, low_dim=low_dim, images=images, action_dim=action_dim, where=f"policy at {path}"
    )
    policy = GaussianPolicy(policy_config)
    load_weights(policy, path, WEIGHTS_FILE, config)
    return policy


def load_critic(path: str | Path) -> Critic | None:
    """Load the checkpoint's critic, or None if it was saved without one.

    The critic is built from the :class:`PolicyConfig` fields of the config's ``critic`` section where it has
    one (a critic that reads other features than the policy), else of the policy section (observation layout
    and trunk); fields a policy type adds to its config are its own and the critic ignores them.

    Raises:
        CheckpointError: as :func:`load_policy`, for ``critic.safetensors``.
    """
    path = Path(path)
    config = read_config(path)
    if CRITIC_FILE not in config.get("weights_sha256", {}):
        return None
    known = {f.name for f in fields(PolicyConfig)}
    section = {k: v for k, v in config.get("critic", config.get("policy", {})).items() if k in known}
    try:
        critic = Critic(PolicyConfig(**legacy_policy_section(section)))
    except (TypeError, ValueError) as e:
        which = "critic" if "critic" in config else "policy"
        raise CheckpointError(f"{path / CONFIG_FILE}: invalid {which!r} section: {e}") from None
    load_weights(critic, path, CRITIC_FILE, config)
    return critic
