"""Feature specifications of an episode store, and the one error type the datasets package raises.

A store holds, per feature, one time-first array ``data/<name>`` of shape ``(T_total, *shape)``;
``T_total`` counts the steps of every committed episode back to back. A :class:`Schema` is the list of
those features plus optional per-episode arrays (shape ``(E, *shape)``, one row per episode, e.g. the
final ``next_obs`` of a robomimic demo). Schemas are plain data and round-trip through JSON, which is
how a store keeps its schema in its root attributes.

Legend: ``T`` steps in an episode, ``E`` episodes, ``H``/``W``/``C`` image height/width/channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

KINDS = ("low_dim", "image", "scalar")
"""``low_dim``: a small float/int vector per step; ``image``: ``(H, W, C)`` uint8 frame per step;
``scalar``: one number per step (``shape == ()``: reward, terminated, logp, ...)."""

IMAGE_CODECS = ("qoi", "png", "jpeg", "webp", "none")
"""Frame codecs for image features: ``qoi``, ``png`` and ``webp`` (lossless here) keep every value,
``jpeg`` is lossy, ``none`` stores Blosc/Zstd-compressed raw frames. ``qoi`` takes 3- or 4-channel
frames only."""
DEFAULT_IMAGE_CODEC = "qoi"
"""The codec an image feature gets when none is named (``png`` for one-channel frames, which QOI cannot
hold). Of the lossless codecs QOI decodes fastest, about 4x faster than PNG; its frames are about 5%
smaller than PNG's on rendered robosuite 84x84 frames and about 30% larger on ``scripts/bench_store.py``'s
noisy synthetic ones (``benchmarks/store_codecs.json``)."""


ALREADY_EXISTS = "already exists (--overwrite, or overwrite=True in Python, replaces it)"
"""The error for a destination that exists: it names the command-line flag and the Python argument."""


class DatasetError(Exception):
    """A store, file or episode that is missing, malformed or disagrees with its schema.

    The message names the store path and, where they apply, the feature and the episode, e.g.
    ``runs/demos.zarr: feature 'action', episode 3: non-finite value at step 17``.

    Attributes:
        path: the store or file concerned (``None`` when there is none yet).
        feature: the feature or key concerned, or ``None``.
        episode: the episode index concerned, or ``None``.
    """

    def __init__(
        self, message: str, *, path: object = None, feature: str | None = None, episode: int | None = None
    ) -> None:
        self.path = None if path is None else str(path)
        self.feature = feature
        self.episode = episode
        where = []
        if self.path is not None:
            where.append(self.path)
        if feature is not None:
            where.append(f"feature {feature!r}")
        if episode is not None:
            where.append(f"episode {episode}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True)
class Feature:
    """One per-step (or per-episode) array of a store.

    Attributes:
        name: array name under ``data/``; observations are ``obs.<key>`` (``obs.agentview_image``),
            the others ``action``, ``reward``, ``terminated``, ``truncated``, ``logp`` (behaviour
            log-probability of the action, nats), ``policy_version`` (the behaviour policy's update
            counter; -1 for non-policy steps), ``timestamp`` (seconds since the episode start).
        dtype: numpy dtype name (``float32``, ``uint8``, ``bool``, ...).
        shape: per-step shape: ``()`` for scalars, ``(D,)`` for low-dim, ``(H, W, C)`` for images.
        kind: one of :data:`KINDS`.
        fill: value used when an append leaves this feature out (``None``: the feature is required).
        codec: image features only, one of :data:`IMAGE_CODECS`; ``None`` picks
            :data:`DEFAULT_IMAGE_CODEC` (``png`` for one-channel frames).
        quality: codec quality for ``jpeg``/``webp`` (0-100); ignored by lossless codecs.
    """

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    kind: str = "low_dim"
    fill: float | int | bool | None = None
    codec: str | None = None
    quality: int = 95

    def __post_init__(self) -> None:
        if self.codec is None:
            gray = self.kind == "image" and len(self.shape) == 3 and self.shape[2] == 1
            object.__setattr__(self, "codec", "png" if gray else DEFAULT_IMAGE_CODEC)
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise DatasetError(f"invalid feature name {self.name!r} (non-empty, no '/', no leading '.')")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        try:
            dt = np.dtype(self.dtype)
        except TypeError as err:
            raise DatasetError(f"unknown dtype {self.dtype!r}", feature=self.name) from err
        if dt.kind not in "biuf":
            raise DatasetError(f"dtype {self.dtype!r} is not bool/int/float", feature=self.name)
        object.__setattr__(self, "dtype", dt.name)
        if self.kind not in KINDS:
            raise DatasetError(f"kind {self.kind!r} is not one of {KINDS}", feature=self.name)
        if any(s <= 0 for s in self.shape):
            raise DatasetError(f"shape {self.shape} has a non-positive dimension", feature=self.name)
        if self.kind == "scalar" and self.shape != ():
            raise DatasetError(f"scalar feature must have shape (), got {self.shape}", feature=self.name)
        if self.kind == "image":
            if len(self.shape) != 3 or self.shape[2] not in (1, 3, 4) or dt != np.uint8:
                raise DatasetError(
                    f"image feature must be uint8 (H, W, C) with C in 1/3/4, got {dt.name} {self.shape}",
                    feature=self.name,
                )
            if self.codec not in IMAGE_CODECS:
                raise DatasetError(f"codec {self.codec!r} is not one of {IMAGE_CODECS}", feature=self.name)
            if self.codec == "qoi" and self.shape[2] == 1:
                raise DatasetError("codec 'qoi' needs 3 or 4 channels; use 'png' for C=1", feature=self.name)
        if not 0 <= self.quality <= 100:
            raise DatasetError(f"quality {self.quality} is outside 0..100", feature=self.name)

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def is_float(self) -> bool:
        return self.np_dtype.kind == "f"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        out["kind"] = self.kind
        if self.fill is not None:
            out["fill"] = self.fill
        if self.kind == "image":
            out["codec"] = self.codec
            out["quality"] = self.quality
        return out

    @classmethod
    def from_json(cls, data: Any) -> Feature:
        if not isinstance(data, dict) or "name" not in data or "dtype" not in data:
            raise DatasetError(f"feature spec must be an object with 'name' and 'dtype', got {data!r}")
        known = {"name", "dtype", "shape", "kind", "fill", "codec", "quality"}
        unknown = set(data) - known
        if unknown:
            raise DatasetError(f"unknown keys {sorted(unknown)} in feature spec", feature=str(data["name"]))
        try:
            return cls(**{**data, "shape": tuple(data.get("shape", ()))})
        except (TypeError, ValueError) as err:
            raise DatasetError(f"bad feature spec {data!r}: {err}", feature=str(data["name"])) from err


@dataclass(frozen=True)
class Schema:
    """The features of a store.

    Attributes:
        features: per-step features, each stored as ``data/<name>`` with shape ``(T_total, *shape)``.
        episode_features: per-episode arrays, each stored as ``meta/episodes/<name>`` with shape
            ``(E, *shape)`` (e.g. a robomimic demo's final ``next_obs``).
    """

    features: tuple[Feature, ...]
    episode_features: tuple[Feature, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "episode_features", tuple(self.episode_features))
        if not self.features:
            raise DatasetError("a schema needs at least one feature")
        for group in (self.features, self.episode_features):
            names = [f.name for f in group]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise DatasetError(f"duplicate feature names {dupes}")
        reserved = set(EPISODE_META_FIELDS) | {"extra"}
        clash = sorted(reserved & {f.name for f in self.episode_features})
        if clash:
            raise DatasetError(f"episode feature names {clash} are reserved for episode metadata")

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise DatasetError(f"no such feature; the schema has {self.names}", feature=name)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> dict[str, Any]:
        return {
            "features": [f.to_json() for f in self.features],
            "episode_features": [f.to_json() for f in self.episode_features],
        }

    @classmethod
    def from_json(cls, data: Any) -> Schema:
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            raise DatasetError(f"schema must be an object with a 'features' list, got {type(data).__name__}")
        return cls(
            features=tuple(Feature.from_json(f) for f in data["features"]),
            episode_features=tuple(Feature.from_json(f) for f in data.get("episode_features", [])),
        )


EPISODE_META_FIELDS = {
    "source": "str",
    "success": "bool",
    "task": "str",
    "length": "int64",
    "start_time": "float64",
    "policy_version": "int64",
}
"""Per-episode metadata arrays under ``meta/episodes/`` (one row per episode): ``source`` (one of
:data:`SOURCES`), ``success``, ``task`` (free text), ``length`` (steps), ``start_time`` (Unix seconds),
``policy_version`` (behaviour policy version for rollouts, -1 otherwise). ``extra`` holds one JSON
object per episode for anything else (a robomimic demo's ``model_file``, ...)."""

SOURCES = ("demo", "teleop", "rollout", "deploy")


@dataclass(frozen=True)
class EpisodeMeta:
    """Per-episode metadata, one row of ``meta/episodes/``.

    Attributes:
        source: where the episode came from, one of ``demo``, ``teleop``, ``rollout``, ``deploy``.
        success: whether the task was achieved.
        task: free-text task name or instruction.
        length: number of steps ``T``.
        start_time: Unix time of the first step, seconds.
        policy_version: behaviour policy version that produced a rollout; -1 otherwise.
        extra: any other JSON-serialisable metadata (a robomimic demo's ``model_file``, ...).
    """

    source: str = "demo"
    success: bool = False
    task: str = ""
    length: int = 0
    start_time: float = 0.0
    policy_version: int = -1
    extra: dict[str, Any] = field(default_factory=dict)


class StepSpec(Protocol):
    """What :func:`step_schema` reads from a robot's spec (a ``RobotSpec`` has all three)."""

    obs_shapes: Mapping[str, tuple[int, ...]]
    obs_dtypes: Mapping[str, str]

    @property
    def action_dim(self) -> int: ...


def step_schema(spec: StepSpec, *, image_codec: str | None = None, extra: tuple[Feature, ...] = ()) -> Schema:
    """The schema of one recorded robot step, the one every writer uses (demos, teleop, rollouts, deploys).

    Features: ``obs.<feature>`` for each observation of ``spec`` (uint8 ``(H, W, C)`` images with
    ``image_codec``, float32 otherwise), ``action`` (A,), ``reward``, ``terminated``, ``truncated``,
    ``success``, ``timestamp`` (s), the rollout features ``logp``/``policy_version`` (filled with 0.0/-1
    for steps no policy sampled), then the ``extra`` features (e.g. teleop's ``intervention``).

    Args:
        spec: the robot's spec (``obs_shapes``, ``obs_dtypes``, ``action_dim``).
        image_codec: frame codec for the cameras, one of :data:`IMAGE_CODECS` (``None``: the default).
        extra: features appended after the standard ones.
    """
    features = []
    for name, shape in spec.obs_shapes.items():
        if spec.obs_dtypes.get(name) == "uint8" and len(shape) == 3:
            features.append(Feature(f"obs.{name}", "uint8", tuple(shape), "image", codec=image_codec))
        else:
            kind = "scalar" if tuple(shape) == () else "low_dim"
            features.append(Feature(f"obs.{name}", "float32", tuple(shape), kind))
    features += [
        Feature("action", "float32", (spec.action_dim,), "low_dim"),
        Feature("reward", "float32", (), "scalar", fill=0.0),
        Feature("terminated", "bool", (), "scalar", fill=False),
        Feature("truncated", "bool", (), "scalar", fill=False),
        Feature("success", "bool", (), "scalar", fill=False),
        Feature("timestamp", "float64", (), "scalar", fill=0.0),
        Feature("logp", "float32", (), "scalar", fill=0.0),
        Feature("policy_version", "int64", (), "scalar", fill=-1),
        *extra,
    ]
    return Schema(tuple(features))


def sampled_step_schema(spec: StepSpec, *, image_codec: str | None = None) -> Schema:
    """The step schema of episodes a *sampling* policy acted in (robot fine-tuning, ``deploy --sample``):
    :func:`step_schema` plus ``sample`` (A,), the raw Gaussian draw the policy's action was clipped from,
    ``logp_per_dim`` (A,), its behaviour log-prob per action dimension (``logp`` is their sum), and
    ``intervention`` (the operator had taken over: no log-prob, a demonstration). Such episodes can be
    replayed under an importance-ratio objective later (``finetune --robot --from-store``)."""
    a = spec.action_dim
    extra = (
        Feature("sample", "float32", (a,), "low_dim", fill=0.0),
        Feature("logp_per_dim", "float32", (a,), "low_dim", fill=0.0),
        Feature("intervention", "bool", (), "scalar", fill=False),
    )
    return step_schema(spec, image_codec=image_codec, extra=extra)
