"""Observation sets: which recorded features a policy reads, by name.

A policy declares the features it reads (``PolicyConfig.low_dim`` and ``PolicyConfig.images``); an
observation set is how a user picks them from what a store records, without listing feature names:

- ``state``: every low-dim feature, the simulator's privileged object state (``object``) included;
  what the state-based policies of the quickstart read. Not for hardware: no real arm observes it.
- ``proprio``: the low-dim features a real arm senses (joints, gripper, end effector by forward
  kinematics): every low-dim feature but the :data:`PRIVILEGED` ones.
- ``proprio+cameras``: ``proprio`` plus every camera (``<camera>_image``). The realistic set for
  anything meant for hardware.
- ``cameras``: the cameras only.
- ``auto`` (what ``train-bc`` uses unless told): ``proprio+cameras`` when the store has a camera, else
  ``state``.

Names here are feature names as a policy and a robot see them (``robot0_eef_pos``, ``agentview_image``),
without the store's ``obs.`` prefix. Camera features are ``<camera>_image``: ``(h, w, C)`` uint8 as robots,
the simulator and the store hold them, ``(C, h, w)`` inside a policy (``PolicyConfig.images``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CAMERA_RENDER_QUALITY",
    "CAMERA_SUFFIX",
    "OBS_SETS",
    "PRIVILEGED",
    "camera_name",
    "is_camera",
    "resolve_obs_set",
    "select_features",
    "sim_camera_options",
]

#: The observation sets a user can name (``--obs``), with what each reads.
OBS_SETS: dict[str, str] = {
    "auto": "proprio+cameras when the store has a camera, else state",
    "state": "every low-dim feature, the simulator's privileged object state included",
    "proprio": "the low-dim features a real arm senses (joints, gripper, end effector)",
    "proprio+cameras": "proprio plus every camera",
    "cameras": "every camera, nothing else",
}

#: Features only a simulator observes (robosuite's object poses and gripper-to-object vectors).
PRIVILEGED: frozenset[str] = frozenset({"object"})

CAMERA_SUFFIX = "_image"

#: The simulator's render settings on every camera path (:data:`gipo_robot.sim.config.RENDER_QUALITIES`).
CAMERA_RENDER_QUALITY = "fast"


def is_camera(name: str) -> bool:
    """Whether a feature name is a camera's (``<camera>_image``)."""
    return name.endswith(CAMERA_SUFFIX)


def camera_name(feature: str) -> str:
    """``agentview_image`` -> ``agentview``.

    Raises:
        ValueError: ``feature`` is not a camera feature.
    """
    if not is_camera(feature):
        raise ValueError(f"{feature!r} is not a camera feature (<camera>{CAMERA_SUFFIX})")
    return feature[: -len(CAMERA_SUFFIX)]


def resolve_obs_set(obs_set: str, features: Iterable[str]) -> str:
    """The concrete set ``auto`` stands for given the available ``features``; other names unchanged.

    Raises:
        ValueError: an unknown set name (the message lists the known ones).
    """
    if obs_set not in OBS_SETS:
        raise ValueError(f"unknown observation set {obs_set!r}; known: {', '.join(OBS_SETS)}")
    if obs_set != "auto":
        return obs_set
    return "proprio+cameras" if any(is_camera(f) for f in features) else "state"


def select_features(obs_set: str, features: Iterable[str], *, where: str = "the data") -> list[str]:
    """The features of ``features`` (names without ``obs.``) that ``obs_set`` reads, sorted.

    Args:
        obs_set: a name from :data:`OBS_SETS`.
        features: the observation features available (a store's, a robot spec's).
        where: what ``features`` belong to, for error messages (e.g. the store's path).

    Raises:
        ValueError: an unknown set, or a set that selects nothing from ``features`` (e.g. ``cameras`` on a
            store recorded without a camera); the message names ``where`` and what it has.
    """
    features = sorted(features)
    concrete = resolve_obs_set(obs_set, features)
    cameras = [f for f in features if is_camera(f)]
    low_dim = [f for f in features if not is_camera(f)]
    proprio = [f for f in low_dim if f not in PRIVILEGED]
    chosen = {
        "state": low_dim,
        "proprio": proprio,
        "proprio+cameras": proprio + cameras,
        "cameras": cameras,
    }[concrete]
    if concrete in ("proprio+cameras", "cameras") and not cameras:
        raise ValueError(f"observation set {obs_set!r} needs a camera, but {where} has none: {features}")
    if not chosen:
        raise ValueError(f"observation set {obs_set!r} selects nothing from {where}: {features}")
    return sorted(chosen)


def sim_camera_options(images: Mapping[str, Any]) -> dict[str, Any]:
    """The simulator options that render exactly the cameras a policy reads, at its resolution.

    Args:
        images: ``PolicyConfig.images``, ``<camera>_image -> [C, h, w]``.

    Returns:
        ``{"cameras": (...), "image_size": n, "render_quality": "fast"}`` for
        :func:`gipo_robot.sim.make_env` / :class:`~gipo_robot.sim.config.EnvConfig` (``{}`` for a policy
        without cameras). Every camera path of the toolkit (demos recorded with cameras, vision training,
        evaluation, fine-tuning) renders with the ``fast`` settings, so a policy sees at evaluation the
        pixels it was trained on.

    Raises:
        ValueError: images that are not square RGB of one size (the simulator renders every camera at
            ``image_size`` x ``image_size``).
    """
    if not images:
        return {}
    shapes = {tuple(int(d) for d in shape) for shape in images.values()}
    if len(shapes) != 1 or (shape := shapes.pop())[0] != 3 or shape[1] != shape[2]:
        raise ValueError(
            f"the simulator renders square RGB cameras of one size; the policy reads {dict(images)}"
        )
    cameras = tuple(camera_name(f) for f in sorted(images))
    return {"cameras": cameras, "image_size": shape[1], "render_quality": CAMERA_RENDER_QUALITY}
