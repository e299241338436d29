"""What a success classifier learns from: which observation features it reads, the per-step labels of a
labelled episode, the split of a store's episodes into training and held-out sets, and the frames'
downsampling that training and inference share.

Per-step labels (``label_steps``). An episode of length ``L`` has a final window of
``k = min(L, max(last_min, ceil(last_fraction * L)))`` steps (10% of the episode, at least 3, by default):

- a successful episode's final ``k`` steps are positives (the state the task ends in); its steps before
  ``L - 2k`` are negatives (the task was not achieved yet: a reach, a grasp); the ``k`` steps just before
  the final window are left out, because a success is often reached a few steps before the recording ends
  and those states look like success;
- every step of a failed episode is a negative.

An episode is judged by the mean probability over its final ``k`` steps, the same window.

Legend: ``L`` steps of one episode, ``N`` steps of several episodes, ``D`` concatenated low-dim size,
``H``/``W``/``C`` a camera's frame height/width/channels, ``S`` the downsampled frame side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gipo_robot.datasets import EpisodeStore

PRIVILEGED_FEATURES = ("object",)
"""Observation features only a simulator has (object poses): left out by default, since a real arm's
classifier sees only what the arm senses (joint, gripper and end-effector state, cameras)."""
IMAGE_SIZE = 32
"""Camera frames are area-downsampled to ``S x S`` = 32 x 32 before the classifier sees them."""


def obs_features(store: EpisodeStore) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The store's observation features: name without ``obs.`` -> (``"image"`` or ``"low_dim"``, shape)."""
    out = {}
    for f in store.schema.features:
        if f.name.startswith("obs."):
            out[f.name[4:]] = ("image" if f.kind == "image" else "low_dim", tuple(f.shape))
    return out


def choose_features(store: EpisodeStore, features: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The low-dim and camera features a classifier reads, in the store's order.

    Args:
        store: the labelled store.
        features: names with or without the ``obs.`` prefix; None: every low-dim observation except
            :data:`PRIVILEGED_FEATURES`, and every camera.

    Returns:
        ``(low_dim, cameras)``, names without the ``obs.`` prefix.

    Raises:
        ValueError: a name that is not an observation feature of the store (listing the known ones), or
            nothing left to read.
    """
    known = obs_features(store)
    if features is None:
        chosen = [n for n in known if n not in PRIVILEGED_FEATURES]
    else:
        chosen = []
        for name in features:
            bare = name[4:] if name.startswith("obs.") else name
            if bare not in known:
                raise ValueError(
                    f"{store.path}: no observation feature {name!r}; the store has {sorted(known)}"
                )
            if bare not in chosen:
                chosen.append(bare)
    low = [n for n in known if n in chosen and known[n][0] == "low_dim"]
    cams = [n for n in known if n in chosen and known[n][0] == "image"]
    if not low and not cams:
        raise ValueError(f"{store.path}: no observation features to classify from (it has {sorted(known)})")
    return low, cams


def final_window(length: int, last_fraction: float, last_min: int) -> int:
    """``k``: how many final steps of a ``length``-step episode show its outcome (see the module doc)."""
    return int(min(length, max(last_min, math.ceil(last_fraction * length))))


def label_steps(length: int, success: bool, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-step training labels of one episode: ``(labels (L,) float32, used (L,) bool)``.

    Worked example: ``length=20, k=3``, successful: steps 17..19 are 1, steps 14..16 unused, 0..13 are 0.
    """
    labels = np.zeros(length, np.float32)
    used = np.ones(length, bool)
    if success:
        labels[length - k :] = 1.0
        used[max(0, length - 2 * k) : length - k] = False
    return labels, used


def split_episodes(success: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split episode indices into ``(train, held_out)``, stratified by label and seeded.

    Of each label's ``n`` episodes, ``round(held_out * n)`` are held out, at least one where ``n >= 2`` and
    ``held_out > 0``, and at most ``n - 1`` (training keeps one of each label).

    Args:
        success: ``(E,)`` bool episode labels.
        held_out: fraction of episodes held out, in [0, 1).
        seed: the split's seed.
    """
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in (False, True):
        idx = np.flatnonzero(success == label)
        rng.shuffle(idx)
        n_test = round(held_out * idx.size)
        if held_out > 0 and idx.size >= 2:
            n_test = max(1, n_test)
        n_test = min(n_test, max(0, idx.size - 1))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def downsample(frames: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """``(L, H, W, C)`` uint8 frames -> ``(L, C, S, S)`` uint8, area-averaged and rounded."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def episode_inputs(
    steps: Mapping[str, np.ndarray], low: Sequence[str], cams: Sequence[str], *, where: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One episode's classifier inputs: ``(low (L, D) float32, {camera: (L, C, S, S) uint8})``.

    Args:
        steps: ``obs.<feature>`` (or bare ``<feature>``) -> ``(L, ...)`` arrays.
        low, cams: the features to read.
        where: how errors name the caller (a classifier's path).

    Raises:
        ValueError: a feature missing from ``steps``, or features of different lengths.
    """

    def get(name: str) -> np.ndarray:
        for key in (f"obs.{name}", name):
            if key in steps:
                return np.asarray(steps[key])
        raise ValueError(f"{where}: the episode has no observation obs.{name} (it has {sorted(steps)})")

    parts = [a.reshape(len(a), -1).astype(np.float32) for a in (get(n) for n in low)]
    images = {n: downsample(get(n)) for n in cams}
    lengths = {len(p) for p in parts} | {len(v) for v in images.values()}
    if len(lengths) != 1:
        raise ValueError(f"{where}: the episode's features have different lengths {sorted(lengths)}")
    flat = np.concatenate(parts, axis=1) if parts else np.zeros((lengths.pop(), 0), np.float32)
    return flat, images


@dataclass
class Examples:
    """Per-step training examples of several episodes (``N`` steps in all)."""

    low: np.ndarray  # (N, D) float32
    images: dict[str, np.ndarray]  # camera -> (N, C, S, S) uint8
    labels: np.ndarray  # (N,) float32
    weights: np.ndarray  # (N,) float32, positives and negatives weigh the same in total


def build_examples(
    inputs: Mapping[int, tuple[np.ndarray, dict[str, np.ndarray]]],
    success: np.ndarray,
    episodes: Sequence[int],
    last_fraction: float,
    last_min: int,
) -> Examples:
    """Stack the used steps of ``episodes`` (see :func:`label_steps`) with class-balancing weights."""
    lows, labels, cams = [], [], {n: [] for n in next(iter(inputs.values()))[1]}
    for e in episodes:
        low, images = inputs[e]
        lab, used = label_steps(len(low), bool(success[e]), final_window(len(low), last_fraction, last_min))
        lows.append(low[used])
        labels.append(lab[used])
        for n in cams:
            cams[n].append(images[n][used])
    y = np.concatenate(labels)
    pos = max(1.0, float(y.sum()))
    neg = max(1.0, float(y.size - y.sum()))
    weights = np.where(y > 0.5, y.size / (2 * pos), y.size / (2 * neg)).astype(np.float32)
    return Examples(np.concatenate(lows), {n: np.concatenate(v) for n, v in cams.items()}, y, weights)
