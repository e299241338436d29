"""A LeRobot policy checkpoint (ACT) as a Gaussian action-chunk policy that GIPO can fine-tune.

Needs the ``lerobot`` package, 0.6 (``[lerobot]`` extra: Python >= 3.12, see :data:`INSTALL_HINT`).
Everything LeRobot-specific is LeRobot's own code: the checkpoint loads with ``ACTPolicy.from_pretrained``;
observations go through the checkpoint's own pre-processor pipeline (``policy_preprocessor.json`` and its
state file: renaming, batching, device, normalisation) and ACT's output through its own post-processor
(``policy_postprocessor.json``: un-normalisation), loaded with ``make_pre_post_processors`` and kept as they
are; the chunk is ACT's ``predict_action_chunk`` (called without its ``no_grad`` so gradients reach ACT's
weights). So the wrapped policy's mean chunk is what LeRobot's own ``predict_action`` / ``select_action``
returns, step by step (the tests check it bit for bit).

The distribution. With ``f(o)`` ACT's action chunk in environment units (pre-processor -> ACT ->
post-processor; loaded with a ``robot_spec`` in LeRobot's units, then normalised by the robot's action
range, ``2 (post - low) / (high - low) - 1``, the robot's normalised action), the policy is a diagonal
Gaussian over the first ``H`` actions of the chunk::

    a ~ N(f(o), diag(σ²)),   σ = exp(log_std) · action_scale,   log π(a|o) = Σ_{h,a} log N(a_{h,a}; f, σ)

``log_std`` is learnable and state-independent, ``(H, A)``, in ACT's normalised action units (soft-bounded as
in :class:`~gipo_robot.policies.gaussian.GaussianPolicy`); ``action_scale`` is the slope of the checkpoint's
post-processor (the action std for LeRobot's default MEAN_STD), measured once through it: a post-processor
that is not affine per action dimension is refused. Actions are not squashed: the robot gets
``clip(a, low, high)``, the log-prob is that of the raw sample (same convention as ``GaussianPolicy``).

ACT runs in eval mode always (dropout off, VAE latent zero), so ``f(o)`` is deterministic and the behaviour
and learner log-probs of the same weights agree exactly.

The distribution math is the shared :class:`~gipo_robot.policies.head.GaussianHead` (the head of
:class:`GaussianPolicy` too), evaluated in environment units around ``f(o)``; this module supplies the
mean. What the fine-tuning loop uses beyond the head: ``config`` (a
:class:`~gipo_robot.policies.gaussian.PolicyConfig`, so ``Critic(policy.config)`` builds a critic) and
``encoder`` (an observation encoder carrying the checkpoint's state normalisation, for the critic to copy).

Checkpoints: :func:`gipo_robot.policies.checkpoint.save_policy` saves a :class:`LeRobotGaussianPolicy` as it
saves any policy (safetensors + JSON, never pickle): ACT's weights, the processors' state tensors
(normalisation statistics) and the log-std in ``model.safetensors``; ACT's config and the two processor
pipelines' configs (the JSON LeRobot writes; pipelines are rebuilt with LeRobot's
``PolicyProcessorPipeline.from_config``) in ``config.json``. Load it back with :func:`load_finetuned`;
:func:`export_lerobot` writes a LeRobot checkpoint folder of the fine-tuned policy
(``ACTPolicy.from_pretrained`` and ``make_pre_post_processors`` read it).

Shapes: ``B`` batch, ``H`` chunk length used here (<= ACT's ``chunk_size``), ``A`` action dimension;
low-dim observation features ``(B, *shape)``, camera features ``(B, C, h, w)`` uint8 or float in [0, 255].
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gipo_robot.policies.checkpoint import CheckpointError, check_spec, load_weights, read_config
from gipo_robot.policies.gaussian import ObsEncoder
from gipo_robot.policies.head import GaussianHead
from gipo_robot.policies.lerobot_policy_config import (
    IMAGE_PREFIX,
    PIPELINES,
    SUPPORTED_TYPES,
    LeRobotPolicyConfig,
    policy_config,
)

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
    "LeRobot policies need the `lerobot` package (0.6): pip install gipo-robot[lerobot] in a Python >= 3.12 "
    "environment, e.g. your LeRobot one; `make setup-lerobot` builds one in .venv-lerobot"
)
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
CONFIG_NAME = "config.json"
PREPROCESSOR = "policy_preprocessor.json"


def _lerobot() -> Any:
    """The modules used here, imported lazily; ImportError with the install recipe when missing."""
    try:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
        from lerobot.processor import NormalizerProcessorStep, PolicyProcessorPipeline
        from lerobot.processor.converters import (
            batch_to_transition,
            policy_action_to_transition,
            transition_to_batch,
            transition_to_policy_action,
        )
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({type(err).__name__}: {err})") from err
    return {
        "PreTrainedConfig": PreTrainedConfig,
        "get_policy_class": get_policy_class,
        "make_pre_post_processors": make_pre_post_processors,
        "Normalizer": NormalizerProcessorStep,
        "Pipeline": PolicyProcessorPipeline,
        "converters": {
            "preprocessor": (batch_to_transition, transition_to_batch),
            "postprocessor": (policy_action_to_transition, transition_to_policy_action),
        },
    }


class LeRobotGaussianPolicy(GaussianHead):
    """Gaussian over a LeRobot policy's action chunk; see the module docstring for the exact density.

    Build one with :func:`load_lerobot_policy` (from a LeRobot checkpoint folder) or :func:`load_finetuned`.

    Args:
        config: observation/action layout, chunk length, log-std bounds, the LeRobot config and the processor
            pipelines' configs.
        lerobot_policy: the LeRobot policy module (its parameters are this module's ``lerobot.*``).
        processor_state: the pipelines' state tensors, one per name of ``config.processor_state``.
        build_processors: build the pipelines now (:meth:`refresh_processors`); False when the state is a
            placeholder that a state dict replaces next.
    """

    policy_type = "lerobot"  # its name in checkpoint.POLICY_TYPES
    density_units = "env"  # centred on exactly LeRobot's post-processed chunk (see GaussianHead)

    def __init__(
        self,
        config: LeRobotPolicyConfig,
        lerobot_policy: nn.Module,
        processor_state: dict[str, Tensor],
        *,
        build_processors: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.lerobot = lerobot_policy
        self._init_head()  # raw_log_std (H, A) and the action buffers; scale/offset measured below
        # The processors' state (normalisation statistics) as buffers, saved with the weights: one per entry
        # of config.processor_state, in its order.
        self.processor_state = nn.Module()
        for i, name in enumerate(config.processor_state):
            self.processor_state.register_buffer(f"s{i}", torch.as_tensor(processor_state[name]).clone())
        if build_processors:
            self.refresh_processors()

    # --- LeRobot pipelines ---------------------------------------------------------------------------------

    def refresh_processors(self) -> None:
        """(Re)build LeRobot's pre/post-processors from their configs and the state buffers, and measure the
        action map. Call after loading a state dict.

        The post-processor must be affine per action dimension (it is for every LeRobot normalisation mode):
        ``offset = post(0)`` and ``scale = post(1) - post(0)``, checked against ``post(-1)``.

        Raises:
            CheckpointError: a post-processor that is not increasing and affine per dimension.
        """
        lr = _lerobot()
        state: dict[str, dict[str, dict[str, Tensor]]] = {name: {} for name in PIPELINES}
        for i, name in enumerate(self.config.processor_state):
            pipeline, key, tensor = name.split("/", 2)
            state[pipeline].setdefault(key, {})[tensor] = getattr(self.processor_state, f"s{i}")
        built = {
            name: lr["Pipeline"].from_config(
                self.config.processors[name],
                state_dict=state[name],
                to_transition=lr["converters"][name][0],
                to_output=lr["converters"][name][1],
            )
            for name in PIPELINES
        }
        self._preprocess, self._postprocess = built["preprocessor"], built["postprocessor"]
        a = self.config.action_dim
        with torch.no_grad():
            low, zero, one = (
                self._postprocess(torch.full((1, 1, a), v)).reshape(a) for v in (-1.0, 0.0, 1.0)
            )
        scale = one - zero
        if not (scale > 0).all() or not torch.allclose(zero - low, scale, rtol=1e-4, atol=1e-6):
            raise CheckpointError(
                f"the action post-processor is not increasing and affine per dimension: it maps -1, 0, 1 to "
                f"{low.tolist()}, {zero.tolist()}, {one.tolist()}"
            )
        robot = self._robot_range()
        if robot is not None:  # onto the robot's normalised actions: 2 (a - low) / (high - low) - 1
            span = robot[1] - robot[0]
            zero, scale = 2.0 * (zero - robot[0]) / span - 1.0, 2.0 * scale / span
        self.action_offset.copy_(zero)
        self.action_scale.copy_(scale)

    def _robot_range(self) -> tuple[Tensor, Tensor] | None:
        """The robot's action range in LeRobot's units, (A,) each, or None (see ``robot_action_low``)."""
        if self.config.robot_action_low is None or self.config.robot_action_high is None:
            return None
        device = self.action_scale.device
        return (
            torch.tensor(self.config.robot_action_low, dtype=torch.float32, device=device),
            torch.tensor(self.config.robot_action_high, dtype=torch.float32, device=device),
        )

    def _stats(self) -> dict[str, dict[str, Tensor]]:
        """The pre-processor's normalisation statistics, LeRobot layout ``{key: {stat: tensor}}``."""
        out: dict[str, dict[str, Tensor]] = {}
        for step in self._preprocess.steps:
            if isinstance(step, _lerobot()["Normalizer"]):
                for name, value in step.state_dict().items():
                    key, stat = name.rsplit(".", 1)
                    out.setdefault(key, {})[stat] = value
        return out

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
        """ACT's normalised chunk in environment units through the checkpoint's post-processor (with a robot
        range: then normalised by the robot's action range, ``2 (post - low) / (high - low) - 1``)."""
        out = self._postprocess(normalized)
        robot = self._robot_range()
        return out if robot is None else 2.0 * (out - robot[0]) / (robot[1] - robot[0]) - 1.0

    def distribution_params(self, obs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean (ACT's normalised chunk) and log-std in normalised action units, each ``(B, H, A)``."""
        mean = self.normalized_chunk(obs)
        return mean, self.bounded_log_std(None, mean.shape[0])


# ------------------------------------------------------------------------------------------------------------
# Loading a LeRobot checkpoint
# ------------------------------------------------------------------------------------------------------------


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
    robot_spec: Any = None,
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
        robot_spec: the :class:`~gipo_robot.hardware.robot.RobotSpec` of the robot to drive, in LeRobot's
            units (``units == "lerobot"``), for an ACT trained on LeRobot's values (``lerobot-record``): its
            actions come out normalised by the spec, ``spec.to_normalized(LeRobot's action)``. None: LeRobot's
            post-processed values are the actions (an ACT trained on a store exported by gipo-robot).

    Raises:
        CheckpointError: missing files, an unsupported policy type, weights that do not fit the config,
            ``inputs`` that do not add up to the checkpoint's input shapes (naming the feature), or a
            ``robot_spec`` not in LeRobot's units or of another action size.
        ImportError: lerobot is not installed (the message gives the install recipe).
    """
    lr = _lerobot()
    path = Path(path)
    for name in (CONFIG_NAME, "model.safetensors", PREPROCESSOR, "policy_postprocessor.json"):
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
    pre, post = _load_processors(lr, cfg, path)
    # as JSON holds them (lists, not tuples): a saved config reads back equal
    processors = json.loads(
        json.dumps({"preprocessor": pre.get_config(), "postprocessor": post.get_config()})
    )
    state = {
        f"{name}/{key}/{tensor}": value.detach().cpu()
        for name, pipeline in (("preprocessor", pre), ("postprocessor", post))
        for key, tensors in pipeline.state_dict().items()
        for tensor, value in tensors.items()
    }
    log_std = (log_std_init, log_std_min, log_std_max)
    robot_range = None if robot_spec is None else _robot_range(robot_spec, path)
    config = policy_config(
        cfg, raw_config, processors, state, inputs, chunk, log_std, where=str(path), robot_range=robot_range
    )
    return LeRobotGaussianPolicy(config, lerobot_policy, state).train(False)


def _robot_range(spec: Any, path: Path) -> tuple[list[float], list[float]]:
    """A robot spec's action range for an ACT trained on LeRobot's values; CheckpointError unless the spec
    is in LeRobot's units."""
    if spec.units != "lerobot":
        raise CheckpointError(
            f"{path}: robot_spec {spec.name} takes units {spec.units!r}; an ACT trained on LeRobot's "
            'values drives a robot in units "lerobot" (units = "lerobot" in its config)'
        )
    return list(spec.action_low), list(spec.action_high)


def _load_processors(lr: dict[str, Any], cfg: Any, path: Path) -> tuple[Any, Any]:
    """The checkpoint's own pre/post-processor pipelines, the pre-processor's device set to ``cfg.device``."""
    steps = json.loads((path / PREPROCESSOR).read_text()).get("steps", [])
    on_device = any(step.get("registry_name") == "device_processor" for step in steps)
    overrides = {"device_processor": {"device": cfg.device}} if on_device else {}
    try:
        return lr["make_pre_post_processors"](
            cfg,
            pretrained_path=str(path),
            preprocessor_overrides=overrides,
        )
    except Exception as err:  # LeRobot raises many kinds; name the folder whatever it is
        raise CheckpointError(f"{path}: LeRobot cannot load the processor pipelines: {err}") from err


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
    if "processors" not in section:
        raise CheckpointError(
            f"{path / CONFIG_NAME} was saved with LeRobot {section.get('lerobot_version') or '0.4'} by an "
            "older gipo-robot (no processor pipelines); export it with export_lerobot there, then wrap the "
            "export with load_lerobot_policy"
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
    placeholder = {name: torch.zeros(shape) for name, shape in config.processor_state.items()}
    policy = LeRobotGaussianPolicy(config, lerobot_policy, placeholder, build_processors=False)
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
