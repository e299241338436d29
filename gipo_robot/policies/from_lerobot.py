"""A LeRobot policy checkpoint (ACT) as a Gaussian action-chunk policy that GIPO can fine-tune.

Needs the ``lerobot`` package (``[lerobot]`` extra; LeRobot 0.4 needs torch < 2.11, hence a second venv, see
:data:`INSTALL_HINT`). Everything LeRobot-specific is LeRobot's own code: the checkpoint loads with
``ACTPolicy.from_pretrained``, observations go through the checkpoint's pre-processor pipeline
(``policy_preprocessor.json``: normalisation) and ACT's output through its post-processor
(``policy_postprocessor.json``: un-normalisation), and the chunk is ACT's ``predict_action_chunk`` (called
without its ``no_grad`` so gradients reach ACT's weights).

The distribution. With ``f(o)`` ACT's action chunk in environment units (pre-processor -> ACT ->
post-processor), the policy is a diagonal Gaussian over the first ``H`` actions of the chunk::

    a ~ N(f(o), diag(σ²)),   σ = exp(log_std) · action_scale,   log π(a|o) = Σ_{h,a} log N(a_{h,a}; f, σ)

``log_std`` is learnable and state-independent, ``(H, A)``, in ACT's normalised action units (soft-bounded as
in :class:`~gipo_robot.policies.gaussian.GaussianPolicy`); ``action_scale`` is the slope of the checkpoint's
un-normalisation (the action std for LeRobot's default MEAN_STD), measured once through the post-processor.
Actions are not squashed: the robot gets ``clip(a, low, high)``, the log-prob is that of the raw sample
(same convention as ``GaussianPolicy``).

ACT runs in eval mode always (dropout off, VAE latent zero), so ``f(o)`` is deterministic and the behaviour
and learner log-probs of the same weights agree exactly.

The distribution math is the shared :class:`~gipo_robot.policies.head.GaussianHead` (the head of
:class:`GaussianPolicy` too), evaluated in environment units around ``f(o)``; this module supplies the
mean. What the fine-tuning loop uses beyond the head: ``config`` (a
:class:`~gipo_robot.policies.gaussian.PolicyConfig`, so ``Critic(policy.config)`` builds a critic) and
``encoder`` (an observation encoder carrying the checkpoint's state normalisation, for the critic to copy).

Checkpoints: :func:`gipo_robot.policies.checkpoint.save_policy` saves a :class:`LeRobotGaussianPolicy` as it
saves any policy (safetensors + JSON, never pickle): ACT's weights, the normalisation statistics and the
log-std in ``model.safetensors``, ACT's config (the JSON LeRobot writes) in ``config.json``. Load it back
with :func:`load_finetuned`; :func:`export_lerobot` writes a LeRobot checkpoint folder of the fine-tuned
policy (``ACTPolicy.from_pretrained`` and ``make_pre_post_processors`` read it).

Shapes: ``B`` batch, ``H`` chunk length used here (<= ACT's ``chunk_size``), ``A`` action dimension;
low-dim observation features ``(B, *shape)``, camera features ``(B, C, h, w)`` uint8 or float in [0, 255].
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gipo_robot.policies.checkpoint import CheckpointError, check_spec, load_weights, read_config
from gipo_robot.policies.gaussian import ObsEncoder, PolicyConfig
from gipo_robot.policies.head import GaussianHead

__all__ = [
    "INSTALL_HINT",
    "LeRobotGaussianPolicy",
    "LeRobotPolicyConfig",
    "export_lerobot",
    "inputs_from_dataset",
    "load_finetuned",
    "load_lerobot_policy",
]

INSTALL_HINT = (
    "LeRobot policies need the `lerobot` package: pip install gipo-robot[lerobot]. LeRobot 0.4 needs "
    "torch < 2.11, so keep it in a second venv: python3.11 -m venv .venv-lerobot && "
    ".venv-lerobot/bin/pip install torch==2.9.1 torchvision==0.24.1 && "
    ".venv-lerobot/bin/pip install lerobot==0.4.4 'pandas<3' 'pyarrow<22' && "
    ".venv-lerobot/bin/pip install -e '.[dev]'"
)
SUPPORTED_TYPES = ("act",)
"""LeRobot policy types whose ``predict_action_chunk`` is deterministic, so it can be a Gaussian's mean."""
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGE_PREFIX = "observation.images."
CONFIG_NAME = "config.json"
PREPROCESSOR = "policy_preprocessor.json"


def _lerobot() -> Any:
    """The modules used here, imported lazily; ImportError with the install recipe when missing."""
    try:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
        from lerobot.processor import NormalizerProcessorStep, UnnormalizerProcessorStep
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({type(err).__name__}: {err})") from err
    return {
        "PreTrainedConfig": PreTrainedConfig,
        "get_policy_class": get_policy_class,
        "make_pre_post_processors": make_pre_post_processors,
        "steps": (NormalizerProcessorStep, UnnormalizerProcessorStep),
    }


@dataclass
class LeRobotPolicyConfig(PolicyConfig):
    """A :class:`PolicyConfig` (observation features, action size, chunk, log-std bounds: what the critic and
    the fine-tuning loop read) plus what rebuilds the LeRobot policy. Saved as JSON in checkpoints.

    Attributes:
        lerobot_type: LeRobot policy type (``act``).
        lerobot_config: the policy's config exactly as LeRobot writes it to ``config.json``.
        lerobot_version: the LeRobot version that loaded the checkpoint.
        inputs: LeRobot input key -> the observation features concatenated (in order) to form it, e.g.
            ``{"observation.state": ["robot0_eef_pos", "robot0_gripper_qpos"], "observation.images.front":
            ["agentview_image"]}``.
        stats: normalisation statistic name (``"action.std"``, ...) -> its shape; the values are buffers.
    """

    lerobot_type: str = "act"
    lerobot_config: dict[str, Any] = field(default_factory=dict)
    lerobot_version: str = ""
    inputs: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lerobot_type not in SUPPORTED_TYPES:
            raise ValueError(
                f"LeRobotPolicyConfig.lerobot_type {self.lerobot_type!r} is not one of {SUPPORTED_TYPES}"
            )
        if self.state_dependent_std:
            raise ValueError(
                "LeRobotPolicyConfig.state_dependent_std must be False (the log-std is a vector)"
            )
        known = set(self.low_dim) | set(self.images)
        for key, names in self.inputs.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"LeRobotPolicyConfig.inputs[{key!r}] names unknown features {unknown}")


def _split_stats(flat: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """``{"observation.state.mean": t}`` -> ``{"observation.state": {"mean": t}}`` (LeRobot's layout)."""
    out: dict[str, dict[str, Tensor]] = {}
    for name, value in flat.items():
        key, stat = name.rsplit(".", 1)
        out.setdefault(key, {})[stat] = value
    return out


class LeRobotGaussianPolicy(GaussianHead):
    """Gaussian over a LeRobot policy's action chunk; see the module docstring for the exact density.

    Build one with :func:`load_lerobot_policy` (from a LeRobot checkpoint folder) or :func:`load_finetuned`.

    Args:
        config: observation/action layout, chunk length, log-std bounds and the LeRobot config.
        lerobot_policy: the LeRobot policy module (its parameters are this module's ``lerobot.*``).
        stats: normalisation statistics, LeRobot layout ``{key: {stat: tensor}}``.
    """

    policy_type = "lerobot"  # its name in checkpoint.POLICY_TYPES
    density_units = "env"  # centred on exactly LeRobot's post-processed chunk (see GaussianHead)

    def __init__(
        self, config: LeRobotPolicyConfig, lerobot_policy: nn.Module, stats: dict[str, dict[str, Tensor]]
    ) -> None:
        super().__init__()
        self.config = config
        self.lerobot = lerobot_policy
        self._init_head()  # raw_log_std (H, A) and the action buffers; scale/offset measured below
        # Statistics as buffers (saved with the weights): one per entry of config.stats, in its order.
        self.norm_stats = nn.Module()
        for i, name in enumerate(config.stats):
            key, stat = name.rsplit(".", 1)
            self.norm_stats.register_buffer(f"s{i}", torch.as_tensor(stats[key][stat]).clone())
        self.refresh_processors()

    # --- LeRobot pipelines ---------------------------------------------------------------------------------

    def _stats(self) -> dict[str, dict[str, Tensor]]:
        flat = {name: getattr(self.norm_stats, f"s{i}") for i, name in enumerate(self.config.stats)}
        return _split_stats(flat)

    def refresh_processors(self) -> None:
        """(Re)build LeRobot's pre/post-processors from the statistic buffers and measure the action map.

        Call after loading a state dict. The un-normalisation is affine per dimension for every LeRobot
        normalisation mode, so ``offset = post(0)`` and ``scale = post(1) - post(0)``.
        """
        lr = _lerobot()
        self._preprocess, self._postprocess = lr["make_pre_post_processors"](
            self.lerobot.config, dataset_stats=self._stats()
        )
        a = self.config.action_dim
        with torch.no_grad():
            zero = self._postprocess(torch.zeros(1, 1, a)).reshape(a)
            one = self._postprocess(torch.ones(1, 1, a)).reshape(a)
        if not (one - zero > 0).all():
            raise CheckpointError(f"the action un-normalisation is not increasing: scale {one - zero}")
        self.action_offset.copy_(zero)
        self.action_scale.copy_(one - zero)

    def train(self, mode: bool = True) -> LeRobotGaussianPolicy:
        """Set training mode on this module but keep the LeRobot policy in eval mode (deterministic mean)."""
        super().train(mode)
        self.lerobot.eval()
        return self

    @property
    def encoder(self) -> ObsEncoder:
        """A fresh observation encoder for a critic (the fine-tuning loop copies its state): random trunk,
        low-dim normalisation from the checkpoint's ``observation.state``/``environment_state`` mean/std."""
        enc = ObsEncoder(self.config)
        stats = self._stats()
        mean = {n: torch.zeros(self.config.low_dim[n]) for n in self.config.low_dim}
        std = {n: torch.ones(self.config.low_dim[n]) for n in self.config.low_dim}
        for key, names in self.config.inputs.items():
            if key.startswith(IMAGE_PREFIX) or "mean" not in stats.get(key, {}) or "std" not in stats[key]:
                continue
            offset = 0
            for n in names:
                size = math.prod(self.config.low_dim[n])
                mean[n] = stats[key]["mean"].flatten()[offset : offset + size].reshape(self.config.low_dim[n])
                std[n] = stats[key]["std"].flatten()[offset : offset + size].reshape(self.config.low_dim[n])
                offset += size
        enc.set_obs_stats(mean, std)
        return enc

    # --- distribution --------------------------------------------------------------------------------------

    def _lerobot_batch(self, obs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Our observation dict -> LeRobot's raw batch (concatenated state vectors, images in [0, 1])."""
        missing = sorted({n for names in self.config.inputs.values() for n in names} - set(obs))
        if missing:
            raise KeyError(f"observation is missing features {missing}; got {sorted(obs)}")
        batch = {}
        for key, names in self.config.inputs.items():
            if key.startswith(IMAGE_PREFIX):
                batch[key] = obs[names[0]].float() / 255.0
                continue
            parts = []
            for n in names:
                x = obs[n]
                if tuple(x.shape[1:]) != tuple(self.config.low_dim[n]):
                    raise ValueError(
                        f"observation feature {n!r} has shape {tuple(x.shape[1:])}, "
                        f"expected {tuple(self.config.low_dim[n])}"
                    )
                parts.append(x.reshape(x.shape[0], -1).float())
            batch[key] = torch.cat(parts, dim=-1)
        return batch

    def normalized_chunk(self, obs: dict[str, Tensor]) -> Tensor:
        """ACT's action chunk in its normalised units, first ``H`` steps: ``(B, H, A)`` (with gradients)."""
        batch = self._preprocess(self._lerobot_batch(obs))
        predict = type(self.lerobot).predict_action_chunk
        predict = getattr(predict, "__wrapped__", predict)  # the method without its @torch.no_grad()
        self.lerobot.eval()
        return predict(self.lerobot, batch)[:, : self.config.chunk]

    def env_mean(self, normalized: Tensor) -> Tensor:
        """ACT's normalised chunk in environment units through the checkpoint's post-processor."""
        return self._postprocess(normalized)

    def distribution_params(self, obs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean (ACT's normalised chunk) and log-std in normalised action units, each ``(B, H, A)``."""
        mean = self.normalized_chunk(obs)
        return mean, self.bounded_log_std(None, mean.shape[0])


# ------------------------------------------------------------------------------------------------------------
# Loading a LeRobot checkpoint
# ------------------------------------------------------------------------------------------------------------


def _default_inputs(input_features: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
    """One observation feature per LeRobot input: ``observation.state`` -> ``state``, images -> camera."""
    out = {}
    for key, feature in input_features.items():
        short = key.removeprefix(IMAGE_PREFIX).removeprefix("observation.")
        out[key] = {short: list(feature.shape)}
    return out


def inputs_from_dataset(root: str | Path) -> dict[str, dict[str, list[int]]]:
    """The observation layout of a LeRobot dataset written by
    :func:`gipo_robot.datasets.from_lerobot.store_to_lerobot`: LeRobot key -> {feature: shape} in
    concatenation order (store feature names without ``obs.``; images ``[C, h, w]``).

    Raises:
        CheckpointError: the folder has no ``meta/gipo_robot.json`` (a dataset recorded with LeRobot: pass
            ``inputs`` to :func:`load_lerobot_policy` yourself).
    """
    file = Path(root) / "meta" / "gipo_robot.json"
    if not file.is_file():
        raise CheckpointError(
            f"{file} is missing: {root} was not written by gipo-robot; pass inputs= yourself"
        )
    sidecar = json.loads(file.read_text())
    features = {f["name"]: f for f in sidecar["store"]["schema"]["features"]}
    out: dict[str, dict[str, list[int]]] = {}
    for key, entry in sidecar["plan"].items():
        if not key.startswith("observation."):
            continue
        layout = {}
        for name in entry["parts"]:
            shape = list(features[name]["shape"]) or [1]
            if features[name]["kind"] == "image":
                shape = [shape[2], shape[0], shape[1]]
            layout[name.removeprefix("obs.")] = shape
        out[key] = layout
    return out


def load_lerobot_policy(
    path: str | Path,
    *,
    inputs: dict[str, dict[str, list[int]]] | None = None,
    chunk: int | None = None,
    log_std_init: float = -1.0,
    log_std_min: float = -5.0,
    log_std_max: float = 1.0,
    device: str = "cpu",
) -> LeRobotGaussianPolicy:
    """Load a LeRobot policy checkpoint folder (``config.json``, ``model.safetensors``, the processor files)
    as a :class:`LeRobotGaussianPolicy`. Reads the local folder only (no hub, no backbone download).

    Args:
        path: the checkpoint folder (e.g. ``outputs/train/.../checkpoints/last/pretrained_model``).
        inputs: LeRobot input key -> ``{observation feature: shape}`` concatenated in order to form it (see
            :func:`inputs_from_dataset`); default one feature per input (``observation.state`` -> ``state``,
            ``observation.images.<cam>`` -> ``<cam>``).
        chunk: H, the leading chunk steps modelled (default ACT's ``n_action_steps``).
        log_std_init, log_std_min, log_std_max: log-std and its bounds, normalised action units.
        device: torch device for LeRobot's processors and weights.

    Raises:
        CheckpointError: missing files, an unsupported policy type, weights that do not fit the config, or
            ``inputs`` that do not add up to the checkpoint's input shapes (naming the feature).
        ImportError: lerobot is not installed (the message gives the install recipe).
    """
    lr = _lerobot()
    path = Path(path)
    for name in (CONFIG_NAME, "model.safetensors", PREPROCESSOR):
        if not (path / name).is_file():
            hint = (
                " (a checkpoint from LeRobot < 0.4 keeps normalisation inside the model: convert it with "
                "python -m lerobot.processor.migrate_policy_normalization)"
                if name == PREPROCESSOR
                else ""
            )
            raise CheckpointError(f"{path / name} is missing: not a LeRobot policy checkpoint{hint}")
    raw_config = json.loads((path / CONFIG_NAME).read_text())
    kind = raw_config.get("type")
    if kind not in SUPPORTED_TYPES:
        raise CheckpointError(f"{path / CONFIG_NAME}: policy type {kind!r} is not one of {SUPPORTED_TYPES}")
    try:
        cfg = lr["PreTrainedConfig"].from_pretrained(path)
    except Exception as err:
        raise CheckpointError(f"{path / CONFIG_NAME}: LeRobot cannot parse it: {err}") from err
    if hasattr(cfg, "pretrained_backbone_weights"):
        cfg.pretrained_backbone_weights = None  # every weight comes from the checkpoint: no download
    cfg.device = device
    try:
        lerobot_policy = lr["get_policy_class"](cfg.type).from_pretrained(path, config=cfg, strict=True)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"{path / 'model.safetensors'} does not fit {path / CONFIG_NAME}: {err}"
        ) from err
    try:
        pre, post = lr["make_pre_post_processors"](cfg, pretrained_path=str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: LeRobot cannot load the processor pipelines: {err}") from err
    flat: dict[str, Tensor] = {}  # the normalisation statistics, "observation.state.mean" -> tensor
    for step in [*pre.steps, *post.steps]:
        if isinstance(step, lr["steps"]):
            flat.update({k: v.detach().cpu() for k, v in step.state_dict().items()})
    log_std = (log_std_init, log_std_min, log_std_max)
    config = _policy_config(cfg, raw_config, flat, inputs, chunk, log_std, where=str(path))
    return LeRobotGaussianPolicy(config, lerobot_policy, _split_stats(flat)).train(False)


def _policy_config(
    cfg: Any,
    raw_config: dict[str, Any],
    flat_stats: dict[str, Tensor],
    inputs: dict[str, dict[str, list[int]]] | None,
    chunk: int | None,
    log_std: tuple[float, float, float],
    *,
    where: str,
) -> LeRobotPolicyConfig:
    """The :class:`LeRobotPolicyConfig` of a LeRobot config and an observation layout (checked)."""
    from lerobot import __version__ as lerobot_version

    input_features = dict(cfg.input_features)
    layout = inputs if inputs is not None else _default_inputs(input_features)
    unknown = sorted(set(layout) - set(input_features))
    if unknown:
        raise CheckpointError(
            f"{where}: inputs {unknown} are not inputs of the policy {sorted(input_features)}"
        )
    low_dim: dict[str, list[int]] = {}
    images: dict[str, list[int]] = {}
    for key, feature in input_features.items():
        if key not in layout:
            raise CheckpointError(f"{where}: the policy reads {key!r} but inputs does not say which features")
        parts = {n: [int(d) for d in s] for n, s in layout[key].items()}
        if key.startswith(IMAGE_PREFIX):
            (name, shape), *rest = parts.items()
            if rest or list(shape) != list(feature.shape):
                raise CheckpointError(
                    f"{where}: input {key!r} is one camera of shape {list(feature.shape)}, got {parts}"
                )
            images[name] = list(shape)
            continue
        total = sum(math.prod(s) for s in parts.values())
        if total != math.prod(feature.shape):
            raise CheckpointError(
                f"{where}: input {key!r} has {math.prod(feature.shape)} values but inputs gives {parts} "
                f"({total} values)"
            )
        low_dim.update(parts)
    action_shape = list(cfg.output_features["action"].shape)
    horizon = chunk if chunk is not None else int(getattr(cfg, "n_action_steps", cfg.chunk_size))
    if not 1 <= horizon <= cfg.chunk_size:
        raise CheckpointError(f"{where}: chunk {horizon} is outside 1..{cfg.chunk_size} (ACT's chunk_size)")
    init, low, high = log_std
    try:
        return LeRobotPolicyConfig(
            low_dim=low_dim,
            images=images,
            action_dim=int(action_shape[0]),
            chunk=horizon,
            log_std_init=init,
            log_std_min=low,
            log_std_max=high,
            lerobot_type=cfg.type,
            lerobot_config={**raw_config, "pretrained_backbone_weights": None}
            if "pretrained_backbone_weights" in raw_config
            else raw_config,
            lerobot_version=lerobot_version,
            inputs={k: list(v) for k, v in layout.items()},
            stats={k: list(v.shape) for k, v in sorted(flat_stats.items())},
        )
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from err


# ------------------------------------------------------------------------------------------------------------
# Fine-tuned checkpoints
# ------------------------------------------------------------------------------------------------------------


def load_finetuned(
    path: str | Path,
    *,
    low_dim: dict[str, list[int]] | None = None,
    images: dict[str, list[int]] | None = None,
    action_dim: int | None = None,
) -> LeRobotGaussianPolicy:
    """Load a :class:`LeRobotGaussianPolicy` saved with :func:`gipo_robot.policies.checkpoint.save_policy`.

    Weights are read from safetensors after their sha256 is checked; nothing is unpickled. Optionally
    checks the policy against an observation/action spec like ``load_policy``.

    Raises:
        CheckpointError: not a LeRobot-based gipo-robot checkpoint, a modified weights file, weights that do
            not fit the config, or a spec mismatch (naming the feature).
        ImportError: lerobot is not installed.
    """
    lr = _lerobot()
    path = Path(path)
    saved = read_config(path)
    section = saved.get("policy", {})
    if "lerobot_type" not in section:
        raise CheckpointError(
            f"{path / CONFIG_NAME} is a gipo-robot policy but not LeRobot-based; load it with load_policy"
        )
    try:
        config = LeRobotPolicyConfig(**section)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_NAME}: invalid 'policy' section: {err}") from err
    check_spec(config, low_dim=low_dim, images=images, action_dim=action_dim, where=f"policy at {path}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / CONFIG_NAME).write_text(json.dumps(config.lerobot_config))
        try:
            cfg = lr["PreTrainedConfig"].from_pretrained(tmp)
        except Exception as err:
            raise CheckpointError(
                f"{path / CONFIG_NAME}: LeRobot cannot parse lerobot_config: {err}"
            ) from err
    cfg.device = "cpu"
    lerobot_policy = lr["get_policy_class"](cfg.type)(cfg)
    stats = _split_stats({name: torch.ones(shape) for name, shape in config.stats.items()})  # loaded below
    policy = LeRobotGaussianPolicy(config, lerobot_policy, stats)
    load_weights(policy, path, "model.safetensors", saved)
    policy.refresh_processors()
    return policy.train(False)


def export_lerobot(policy: LeRobotGaussianPolicy, path: str | Path) -> Path:
    """Write the (fine-tuned) LeRobot policy as a LeRobot checkpoint folder: ``config.json``,
    ``model.safetensors`` and the processor files, loadable with ``ACTPolicy.from_pretrained`` and
    ``make_pre_post_processors(config, pretrained_path=path)``. The Gaussian's log-std is not part of it."""
    path = Path(path)
    policy.lerobot.save_pretrained(path)
    policy._preprocess.save_pretrained(path)
    policy._postprocess.save_pretrained(path)
    return path
