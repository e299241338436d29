"""A learned success classifier: where a fine-tuning run's success label comes from when no simulator and
no operator says it (``finetune --reward classifier:PATH``).

Trained per step on a store's labelled episodes (:mod:`gipo_robot.reward.examples` says which steps are
positives and negatives), judged per episode: an episode is successful when the mean probability over its
final ``k`` steps exceeds ``threshold``. The held-out episodes (split by episode, stratified, seeded) give
its false-positive rate (failed episodes judged successful / failed episodes) and false-negative rate;
:func:`load_classifier` refuses a classifier whose false-positive rate is above the caller's limit, since a
false positive teaches the policy to repeat a failure.

Model: low-dim features standardised with the training split's statistics (clipped to +-5, as the
policies do), each camera through a small conv encoder on ``S x S`` frames, an MLP to one logit.

Saved as a folder, never pickled::

    classifier/
      classifier.json     features, shapes, normalisation, threshold, k rule, held-out and training
                          metrics, split, store path, weights_sha256
      model.safetensors   the network's weights

Legend: ``L`` steps of one episode, ``N`` training steps, ``D`` concatenated low-dim size, ``S`` the
downsampled frame side.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gipo_robot.datasets import EpisodeStore, open_dataset
from gipo_robot.reward.examples import (
    IMAGE_SIZE,
    Examples,
    build_examples,
    choose_features,
    episode_inputs,
    final_window,
    split_episodes,
)

__all__ = [
    "ClassifierError",
    "ClassifierRefused",
    "ClassifierReport",
    "SuccessClassifier",
    "load_classifier",
    "train_classifier",
]

FORMAT = "gipo-robot-success-classifier"
FORMAT_VERSION = 1
CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "model.safetensors"
MIN_STD = 1e-3
MAX_STANDARDISED = 5.0
HIDDEN = (64, 64)
CHANNELS = (16, 32)


class ClassifierError(ValueError):
    """A classifier folder that cannot be read (missing, malformed, weights not matching their sha256)."""


class ClassifierRefused(ClassifierError):
    """A classifier whose held-out false-positive rate is above the caller's limit, or was never measured."""


# ------------------------------------------------------------------------------ the network


class SuccessNet(nn.Module):
    """Low-dim ``(N, D)`` and camera ``(N, C, S, S)`` uint8 inputs -> ``(N,)`` success logits.

    Args:
        low_dim: ``D``.
        cameras: channels ``C`` of each camera, in input order.
    """

    def __init__(self, low_dim: int, cameras: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(low_dim), persistent=False)
        self.register_buffer("std", torch.ones(low_dim), persistent=False)
        self.encoders = nn.ModuleList(_conv_encoder(c) for c in cameras)
        width = low_dim + len(cameras) * CHANNELS[-1]
        layers: list[nn.Module] = []
        for h in HIDDEN:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, low: torch.Tensor, images: Sequence[torch.Tensor]) -> torch.Tensor:
        x = ((low - self.mean) / self.std).clamp(-MAX_STANDARDISED, MAX_STANDARDISED)
        parts = [x] + [enc(img.float() / 255.0) for enc, img in zip(self.encoders, images, strict=True)]
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)


def _conv_encoder(channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in CHANNELS:
        layers += [nn.Conv2d(channels, c, kernel_size=3, stride=2, padding=1), nn.ReLU()]
        channels = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ the classifier


class SuccessClassifier:
    """A trained classifier: per-step probabilities and per-episode verdicts. Build one with
    :func:`train_classifier` or :func:`load_classifier`.

    Attributes:
        features: the observation features it reads, without ``obs.`` (low-dim first, then cameras).
        threshold: an episode is successful when its final-window probability exceeds this.
        held_out: the held-out episodes' metrics (``false_positive_rate``, ``false_negative_rate``, counts).
        path: the folder it was loaded from or saved to (None before saving).
    """

    def __init__(self, net: SuccessNet, config: dict[str, Any], path: str | Path | None = None) -> None:
        self.net = net.eval()
        self.config = config
        self.path = None if path is None else str(path)
        self.low_dim = tuple(config["low_dim"])
        self.cameras = tuple(config["cameras"])
        self.shapes = {name: tuple(shape) for name, shape in config["shapes"].items()}
        self.threshold = float(config["threshold"])
        self.last_fraction = float(config["last_fraction"])
        self.last_min = int(config["last_min"])

    @property
    def features(self) -> tuple[str, ...]:
        return self.low_dim + self.cameras

    @property
    def held_out(self) -> dict[str, Any]:
        return dict(self.config.get("held_out", {}))

    def _where(self) -> str:
        return f"success classifier {self.path}" if self.path else "success classifier"

    def check_fits(self, spec: Any) -> None:
        """Raise before anything moves if ``spec`` (a RobotSpec) does not observe what this reads.

        Raises:
            ValueError: naming the first feature ``spec.obs_shapes`` lacks or has with another shape.
        """
        observed = {name: tuple(shape) for name, shape in spec.obs_shapes.items()}
        name = getattr(spec, "name", "the robot")
        for feature in self.features:
            if feature not in observed:
                raise ValueError(
                    f"{self._where()} reads obs.{feature}, which {name} does not observe "
                    f"(it observes {sorted(observed)})"
                )
            if observed[feature] != self.shapes[feature]:
                raise ValueError(
                    f"{self._where()} reads obs.{feature} of shape {self.shapes[feature]}, but {name} "
                    f"observes it with shape {observed[feature]}"
                )

    @torch.no_grad()
    def _probabilities(self, low: np.ndarray, images: Mapping[str, np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(low), 1024):
            stop = start + 1024
            logits = self.net(
                torch.from_numpy(low[start:stop]),
                [torch.from_numpy(images[c][start:stop]) for c in self.cameras],
            )
            out.append(torch.sigmoid(logits).double().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def step_probabilities(self, steps: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(L,)`` float64 per-step success probabilities of one episode.

        Args:
            steps: ``obs.<feature>`` (or bare ``<feature>``) -> ``(L, ...)`` arrays, as
                :meth:`EpisodeStore.episode` returns them; other keys are ignored.

        Raises:
            ValueError: a feature missing, or shapes that differ from training (naming the feature).
        """
        for feature in self.features:
            for key in (f"obs.{feature}", feature):
                if key in steps:
                    got = tuple(np.shape(steps[key])[1:])
                    if got != self.shapes[feature]:
                        raise ValueError(
                            f"{self._where()}: obs.{feature} has per-step shape {got}, "
                            f"trained on {self.shapes[feature]}"
                        )
                    break
        low, images = episode_inputs(steps, self.low_dim, self.cameras, where=self._where())
        return self._probabilities(low, images)

    def _verdict(self, probs: np.ndarray) -> tuple[bool, float]:
        if probs.size == 0:
            raise ValueError(f"{self._where()}: an episode needs at least one step")
        k = final_window(probs.size, self.last_fraction, self.last_min)
        p = float(probs[-k:].mean())
        return p > self.threshold, p

    def episode_success(self, steps: Mapping[str, np.ndarray]) -> tuple[bool, float]:
        """Judge one whole episode: ``(success, probability)``, the probability being the mean over its
        final ``k`` steps (10% of the episode, at least 3, by default) and success ``probability >
        threshold``. ``steps`` as in :meth:`step_probabilities`."""
        return self._verdict(self.step_probabilities(steps))

    def save(self, out: str | Path) -> Path:
        """Write ``out/model.safetensors`` then ``out/classifier.json`` (each atomically); returns ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        weights = out / WEIGHTS_FILE
        tmp = out / (WEIGHTS_FILE + ".tmp")
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp))
        os.replace(tmp, weights)
        self.config["weights_sha256"] = _sha256(weights)
        tmp = out / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(self.config, indent=1))
        os.replace(tmp, out / CONFIG_FILE)
        self.path = str(out)
        return out


def _build(config: dict[str, Any]) -> SuccessNet:
    """The network of ``config`` with its normalisation loaded (weights still to load)."""
    net = SuccessNet(
        sum(int(np.prod(config["shapes"][n])) for n in config["low_dim"]),
        [int(config["shapes"][c][2]) for c in config["cameras"]],
    )
    norm = config["normalisation"]
    if config["low_dim"]:
        net.mean.copy_(torch.tensor(np.concatenate([norm[n]["mean"] for n in config["low_dim"]])))
        net.std.copy_(torch.tensor(np.concatenate([norm[n]["std"] for n in config["low_dim"]])))
    return net


# ------------------------------------------------------------------------------ loading


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        raise ClassifierError(f"{file}: no such file (train a classifier with `gipo-robot train-reward`)")
    try:
        config = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ClassifierError(f"{file}: not readable JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ClassifierError(f"{file}: not a gipo-robot success classifier (format should be {FORMAT!r})")
    if not isinstance(config.get("format_version"), int) or config["format_version"] > FORMAT_VERSION:
        raise ClassifierError(
            f"{file}: format_version {config.get('format_version')!r} is not supported "
            f"(this code reads <= {FORMAT_VERSION})"
        )
    required = ("low_dim", "cameras", "shapes", "normalisation", "threshold", "last_fraction", "last_min")
    for key in (*required, "held_out", "weights_sha256"):
        if key not in config:
            raise ClassifierError(f"{file}: missing key {key!r}")
    return config


def _check_false_positives(file: Path, held_out: dict[str, Any], limit: float) -> None:
    rate, failures = held_out.get("false_positive_rate"), held_out.get("failures", 0)
    if rate is None or not failures:
        raise ClassifierRefused(
            f"{file}: its held-out episodes include no failures, so its false-positive rate was never "
            f"measured and cannot be held to the limit {limit:.3f}; retrain it on a store with more failed "
            "episodes (at least 2, so that one is held out)"
        )
    if rate > limit:
        raise ClassifierRefused(
            f"{file}: held-out false-positive rate {rate:.3f} ({held_out.get('false_positives')} of "
            f"{failures} failed episodes judged successful) is above the limit {limit:.3f}"
        )


def load_classifier(path: str | Path, *, max_false_positive: float) -> SuccessClassifier:
    """Load a classifier folder, refusing one that would call too many failures successes.

    Args:
        path: a folder written by :func:`train_classifier`.
        max_false_positive: the highest held-out false-positive rate accepted, in [0, 1].

    Raises:
        ClassifierRefused: the held-out false-positive rate exceeds ``max_false_positive``, or no held-out
            failure measured it (naming the file, the rate and the limit).
        ClassifierError: a missing or malformed ``classifier.json``, or weights that do not match its
            sha256 (naming the file).
        ValueError: ``max_false_positive`` outside [0, 1].
    """
    if not 0.0 <= max_false_positive <= 1.0:
        raise ValueError(f"max_false_positive must be in [0, 1], got {max_false_positive}")
    path = Path(path)
    config = _read_config(path)
    _check_false_positives(path / CONFIG_FILE, config["held_out"], max_false_positive)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ClassifierError(f"{weights}: no such file")
    if _sha256(weights) != config["weights_sha256"]:
        raise ClassifierError(f"{weights} does not match the sha256 in {CONFIG_FILE}: modified or truncated")
    net = _build(config)
    try:
        net.load_state_dict(load_file(str(weights)))
    except (SafetensorError, RuntimeError) as err:
        raise ClassifierError(f"{weights}: weights do not fit {CONFIG_FILE}: {err}") from err
    return SuccessClassifier(net, config, path)


# ------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class ClassifierReport:
    """What :func:`train_classifier` built and measured.

    Attributes:
        path: the saved classifier folder.
        store: the store it was trained on.
        features: the observation features it reads (without ``obs.``).
        held_out: metrics on the held-out episodes: ``episodes``, ``successes``, ``failures``,
            ``false_positives``, ``false_negatives``, ``false_positive_rate`` (None without failures),
            ``false_negative_rate`` (None without successes), ``accuracy``, ``per_episode``.
        train: the same metrics on the training episodes.
        train_episodes, held_out_episodes: the split's episode indices.
        examples: training steps used: ``positive``, ``negative``, ``left_out``.
        seconds: wall-clock training time.
    """

    path: str
    store: str
    features: tuple[str, ...]
    held_out: dict[str, Any]
    train: dict[str, Any]
    train_episodes: tuple[int, ...]
    held_out_episodes: tuple[int, ...]
    examples: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def episode_metrics(episodes: Sequence[int], labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """Per-episode verdicts against labels: counts, false-positive/negative rates, accuracy."""
    labels = np.asarray(labels, bool)
    predicted = np.asarray(probs) > threshold
    failures, successes = int((~labels).sum()), int(labels.sum())
    fp, fn = int((predicted & ~labels).sum()), int((~predicted & labels).sum())
    return {
        "episodes": len(labels),
        "successes": successes,
        "failures": failures,
        "false_positives": fp,
        "false_negatives": fn,
        "false_positive_rate": fp / failures if failures else None,
        "false_negative_rate": fn / successes if successes else None,
        "accuracy": float((predicted == labels).mean()) if len(labels) else None,
        "per_episode": [
            {"episode": int(e), "success": bool(y), "probability": round(float(p), 6)}
            for e, y, p in zip(episodes, labels, probs, strict=True)
        ],
    }


def _fit(net: SuccessNet, ex: Examples, cameras: Sequence[str], *, epochs: int, seed: int, progress: bool):
    """Adam on the class-weighted binary cross-entropy, minibatches of 256, seeded shuffling."""
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    low, y, w = torch.from_numpy(ex.low), torch.from_numpy(ex.labels), torch.from_numpy(ex.weights)
    images = [torch.from_numpy(ex.images[c]) for c in cameras]
    net.train()
    bar = tqdm(range(epochs), desc="train-reward", disable=not progress, leave=False, file=sys.stderr)
    for _ in bar:
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(256):
            logits = net(low[idx], [img[idx] for img in images])
            loss = (
                nn.functional.binary_cross_entropy_with_logits(logits, y[idx], reduction="none") * w[idx]
            ).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        bar.set_postfix(loss=f"{total / len(y):.4f}")
    net.eval()


def _normalisation(low: np.ndarray, names: Sequence[str], shapes: Mapping[str, list[int]]) -> dict:
    """Per-feature mean and std (floored at ``MIN_STD``) of the training steps' ``(N, D)`` low-dim inputs."""
    mean, std, offset, out = low.mean(0), np.maximum(low.std(0), MIN_STD), 0, {}
    for n in names:
        size = int(np.prod(shapes[n]))
        out[n] = {"mean": mean[offset : offset + size].tolist(), "std": std[offset : offset + size].tolist()}
        offset += size
    return out


def _config(
    store: EpisodeStore,
    low: Sequence[str],
    cams: Sequence[str],
    low_steps: np.ndarray,
    *,
    threshold: float,
    window: tuple[float, int],
    split: dict[str, Any],
) -> dict[str, Any]:
    """``classifier.json`` before training: features, shapes, normalisation of ``low_steps`` ``(N, D)``."""
    shapes = {n: list(store.schema[f"obs.{n}"].shape) for n in (*low, *cams)}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "low_dim": list(low),
        "cameras": list(cams),
        "shapes": shapes,
        "image_size": IMAGE_SIZE,
        "normalisation": _normalisation(low_steps, low, shapes),
        "threshold": threshold,
        "last_fraction": window[0],
        "last_min": window[1],
        "store": str(store.path),
        "store_episodes": store.n_episodes,
        "split": split,
    }


def _labels(store: EpisodeStore) -> np.ndarray:
    """``(E,)`` bool episode labels; ValueError unless there are successes and failures."""
    success = np.asarray(store.meta_table()["success"], bool)
    if success.all() or not success.any():
        raise ValueError(
            f"{store.path}: a success classifier needs successful and failed episodes; it has "
            f"{int(success.sum())} successful and {int((~success).sum())} failed "
            "(set labels with `gipo-robot label`)"
        )
    return success


def _check_training_args(held_out: float, epochs: int, threshold: float, last_fraction: float, last_min: int):
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if not 0.0 < last_fraction <= 1.0:
        raise ValueError(f"last_fraction must be in (0, 1], got {last_fraction}")
    if not isinstance(last_min, int) or last_min < 1:
        raise ValueError(f"last_min must be a positive int, got {last_min!r}")


def train_classifier(
    store: EpisodeStore | str | Path,
    out: str | Path,
    *,
    features: Sequence[str] | None = None,
    held_out: float = 0.25,
    seed: int = 0,
    epochs: int = 30,
    threshold: float = 0.5,
    last_fraction: float = 0.1,
    last_min: int = 3,
    progress: bool = True,
) -> ClassifierReport:
    """Train a success classifier on a store's labelled episodes, measure it on held-out episodes, save it.

    Args:
        store: an episode store (or its path) whose ``success`` labels are right (``gipo-robot label``).
        out: the folder to write ``classifier.json`` and ``model.safetensors`` into.
        features: observation features to read (with or without ``obs.``); None: every low-dim one except
            the simulator's privileged ``obs.object``, and every camera.
        held_out: fraction of each label's episodes held out for the metrics, in [0, 1).
        seed: seeds the split, the initial weights and the minibatch order.
        epochs: passes over the training steps.
        threshold: episode verdict threshold on the final-window mean probability, in (0, 1).
        last_fraction, last_min: the final window ``k = max(last_min, ceil(last_fraction * L))`` steps.
        progress: show a progress bar on stderr.

    Raises:
        ValueError: the store has no successful or no failed episodes, an unknown feature, a bad argument
            (each naming the store or the argument).
    """
    t0 = time.monotonic()
    _check_training_args(held_out, epochs, threshold, last_fraction, last_min)
    store = store if isinstance(store, EpisodeStore) else open_dataset(store)
    success = _labels(store)
    low, cams = choose_features(store, features)
    train_eps, test_eps = split_episodes(success, held_out, seed)
    keys = [f"obs.{n}" for n in (*low, *cams)]
    inputs = {
        e: episode_inputs(store.episode(e, keys), low, cams, where=store.path) for e in range(len(success))
    }
    ex = build_examples(inputs, success, train_eps, last_fraction, last_min)
    split = {"seed": seed, "fraction": held_out, "train": train_eps.tolist(), "held_out": test_eps.tolist()}
    config = _config(
        store, low, cams, ex.low, threshold=threshold, window=(last_fraction, last_min), split=split
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _build(config)
    _fit(net, ex, cams, epochs=epochs, seed=seed, progress=progress)
    clf = SuccessClassifier(net, config)
    metrics = {}
    for name, eps in (("train", train_eps), ("held_out", test_eps)):
        probs = [clf._verdict(clf._probabilities(*inputs[e]))[1] for e in eps]
        metrics[name] = episode_metrics(eps.tolist(), success[eps], np.array(probs), threshold)
    positive = int(ex.labels.sum())
    examples = {"positive": positive, "negative": len(ex.labels) - positive}
    examples["left_out"] = int(sum(len(inputs[e][0]) for e in train_eps)) - len(ex.labels)
    config.update(metrics, training={"epochs": epochs, "examples": examples})
    clf.save(out)
    return ClassifierReport(
        path=str(out),
        store=str(store.path),
        features=clf.features,
        held_out=metrics["held_out"],
        train=metrics["train"],
        train_episodes=tuple(train_eps.tolist()),
        held_out_episodes=tuple(test_eps.tolist()),
        examples=examples,
        seconds=time.monotonic() - t0,
    )
