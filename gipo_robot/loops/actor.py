"""A policy as an actor: robot observations in, one action per control step out.

Legend: ``B`` batch, ``H`` chunk length, ``A`` action size, ``h``/``w``/``C`` image height, width and
channels.

- :func:`policy_input` is the one observation-to-tensor converter: numpy observations (as a robot, the
  sim env or a vector of envs returns them) -> the dict of tensors a policy reads.
- :class:`PolicyActor` is the one chunk executor: it asks the policy for a chunk of ``H`` actions, queues
  the first ``execute_steps`` of them and re-plans once they are used up (open-loop chunks, as in ACT and
  Diffusion Policy). Deploy, the recorder's policy driving and evaluation all act through it.
- :func:`check_policy_fits` refuses a policy that cannot drive a robot, before anything moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gipo_robot.hardware.robot import RobotSpec

__all__ = ["PolicyActor", "check_policy_fits", "policy_input"]


def policy_input(
    obs: Mapping[str, Any], low_dim: Iterable[str], images: Iterable[str] = (), *, batched: bool = False
) -> dict[str, torch.Tensor]:
    """Numpy observation features -> the tensors a policy reads.

    Args:
        obs: feature name -> array; low-dim features ``(*shape)`` and camera images ``(h, w, C)`` uint8, or
            with a leading batch dimension ``B`` when ``batched``.
        low_dim: the low-dim features to convert (float32 tensors, ``(B, *shape)``).
        images: the camera features to convert (channels first: ``(B, C, h, w)``, dtype kept).
        batched: the arrays already carry the batch dimension; False adds a batch of one.

    Returns:
        Feature name -> tensor, for exactly the features named.

    Raises:
        KeyError: a feature is not observed (naming it and the features there are).
    """
    low_dim, images = list(low_dim), list(images)
    missing = [k for k in low_dim + images if k not in obs]
    if missing:
        raise KeyError(
            f"the observation lacks features {missing} that the policy reads; it has {sorted(obs)}"
        )
    batch = {}
    for k in low_dim:
        x = torch.as_tensor(np.asarray(obs[k], dtype=np.float32))
        batch[k] = x if batched else x[None]
    for k in images:  # (..., h, w, C) -> (..., C, h, w)
        x = torch.as_tensor(np.ascontiguousarray(np.moveaxis(np.asarray(obs[k]), -1, -3)))
        batch[k] = x if batched else x[None]
    return batch


def check_policy_fits(policy_config: Any, spec: RobotSpec, where: str = "policy") -> None:
    """Raise before anything moves if the policy cannot drive this robot.

    Checks the action size (and the action names, where the policy recorded them) and that every
    observation feature the policy reads is observed with the same shape; camera images are observed
    ``(h, w, C)`` and fed to the policy as ``(C, h, w)`` (:func:`policy_input`).

    Args:
        policy_config: the policy's config (``low_dim``, ``images``, ``action_dim``, ``action_names``).
        spec: the robot's spec.
        where: how error messages name the policy (e.g. its checkpoint path).

    Raises:
        ValueError: naming every mismatch.
    """
    from gipo_robot.policies.checkpoint import CheckpointError, check_spec

    low_dim = {k: list(v) for k, v in spec.obs_shapes.items() if spec.obs_dtypes.get(k) != "uint8"}
    images = {
        k: [v[2], v[0], v[1]]
        for k, v in spec.obs_shapes.items()
        if spec.obs_dtypes.get(k) == "uint8" and len(v) == 3
    }
    try:
        check_spec(policy_config, low_dim=low_dim, images=images, action_dim=spec.action_dim, where=where)
    except CheckpointError as err:
        raise ValueError(str(err)) from err
    names = policy_config.action_names
    if names is not None and tuple(names) != spec.action_names:
        raise ValueError(
            f"{where} was trained on actions {list(names)} but {spec.name} takes "
            f"{list(spec.action_names)} ({spec.action_mode})"
        )


class PolicyActor:
    """A policy acting one control step at a time, executing the first ``execute_steps`` of each chunk.

    Args:
        policy: a :class:`~gipo_robot.policies.GaussianPolicy` (or another policy type with its ``config``,
            ``mode``, ``clip`` and, to sample, ``distribution_params``, ``sample_from_params`` and
            ``log_prob_from_params``); put in eval mode here.
        execute_steps: actions of each predicted chunk executed before the policy is queried again
            (1..H); None executes the whole chunk.
        deterministic: act with the mean (``policy.mode``); False samples (``policy.clip`` of a draw from
            the policy's Gaussian) with ``generator``.
        generator: the random source of sampled actions (None: torch's global one).

    Attributes:
        last_sample: after a sampled action, ``(sample, logp_per_dim)``: the raw (A,) Gaussian draw the
            returned action was clipped from and its behaviour log-prob per dimension (what an importance
            ratio needs: ``deploy --sample`` and robot fine-tuning store both); None when deterministic.

    Raises:
        ValueError: ``execute_steps`` outside 1..H.
    """

    def __init__(
        self,
        policy: Any,
        *,
        execute_steps: int | None = None,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        chunk = policy.config.chunk
        n_exec = chunk if execute_steps is None else execute_steps
        if not 1 <= n_exec <= chunk:
            raise ValueError(f"execute_steps must be in 1..{chunk} (the policy's chunk), got {n_exec}")
        self.policy = policy.eval()
        self.execute_steps = n_exec
        self.deterministic = deterministic
        self.generator = generator
        self.low_dim = sorted(policy.config.low_dim)
        self.images = sorted(policy.config.images)
        self._queue: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = []
        self.last_sample: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def load(
        cls, path: str | Path, spec: RobotSpec, *, where: str | None = None, **kwargs: Any
    ) -> PolicyActor:
        """Load the checkpoint at ``path`` and check it fits ``spec`` (:func:`check_policy_fits`).

        Args:
            path: a policy checkpoint directory.
            spec: the robot the actor will drive.
            where: how errors name the policy (default: ``policy at <path>``).
            **kwargs: :class:`PolicyActor`'s options.

        Raises:
            CheckpointError: a missing or corrupt checkpoint.
            ValueError: the policy does not fit the robot.
        """
        from gipo_robot.policies import load_policy

        policy = load_policy(path)
        check_policy_fits(policy.config, spec, where=where or f"policy at {path}")
        return cls(policy, **kwargs)

    def reset(self) -> None:
        """Forget the rest of the current chunk: the next :meth:`act` plans from its observation (call it at
        an episode's start and when control comes back from an operator)."""
        self._queue = []

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """The (A,) float64 action for this step (a new chunk is planned from ``obs`` when the last one's
        ``execute_steps`` actions are used up).

        Raises:
            KeyError: ``obs`` lacks a feature the policy reads.
        """
        if not self._queue:
            self._queue = self._plan(policy_input(obs, self.low_dim, self.images))
        action, self.last_sample = self._queue.pop(0)
        return action

    @torch.no_grad()
    def _plan(self, batch: dict[str, torch.Tensor]) -> list:
        """The next ``execute_steps`` actions of a new chunk, each with its (sample, logp per dim) or None."""
        n = self.execute_steps
        if self.deterministic:
            return [(a, None) for a in self.policy.mode(batch)[0, :n].double().numpy()]
        mean, log_std = self.policy.distribution_params(batch)  # one forward pass: the sample and its density
        raw, _ = self.policy.sample_from_params(mean, log_std, self.generator)
        logp = self.policy.log_prob_from_params(mean, log_std, raw)[0, :n].numpy()
        sent = self.policy.clip(raw)[0, :n].double().numpy()
        return [(sent[i], (raw[0, i].numpy(), logp[i])) for i in range(n)]
