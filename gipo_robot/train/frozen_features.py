"""A frozen camera encoder's embeddings, computed once per frame instead of in every round.

With ``camera_encoder="frozen"`` the camera CNNs never change, so a frame's embedding is the same in every
update round. Without this cache the learner runs the CNN over every frame of the replay in each round's
value pass, and again for each minibatch of the critic and of the policy: on an arm that keeps 200
episodes, the whole replay goes through the CNN each round although only the newest episodes are new.

:class:`FrozenFeatures` embeds each batch's frames once, when the batch first reaches an update, and hands
the learner a view of the replay whose batches hold the ``(…, D)`` embeddings where the frames were
(:class:`~gipo_robot.policies.gaussian.ObsEncoder` takes either). Everything else in a view's batch is the
original batch's own tensors, so a reward relabelled in place (``gipo-robot label``) is seen. The BC term's
demonstrations are embedded once too (:meth:`FrozenFeatures.demos`). The values and log-probs are those of
the frames, up to float rounding (the CNN runs over other groupings of frames).

It applies only where one embedding serves both networks: the policy reads cameras, its encoders are frozen,
and the critic reads no camera or the same cameras with the same (frozen) weights, as a critic initialised
from the policy does. Elsewhere the learner keeps reading frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.replay import ReplayBuffer, RolloutBatch

__all__ = ["FrozenFeatures"]

#: Frames per CNN pass when a batch is embedded (as the learner's ``EVAL_CHUNK``).
EMBED_CHUNK = 512


class FrozenFeatures:
    """The embeddings of the replay's frames under the policy's frozen camera encoders, one per frame.

    Args:
        policy: the policy being fine-tuned (its ``encoder.cameras`` embed the frames).
    """

    def __init__(self, policy: GaussianPolicy) -> None:
        self.cameras = policy.encoder.cameras
        self.names, self.dim = set(policy.config.images), policy.config.image_feature_dim
        self._views: dict[int, tuple[RolloutBatch, RolloutBatch]] = {}  # id(batch) -> (batch, its view)
        self._demos: tuple[Any, Any] | None = None  # (BC data, its view)
        self.embedded_frames = 0  # frames that went through the CNN (for tests and benchmarks)

    @staticmethod
    def applies(policy: GaussianPolicy, critic: Critic, config: FinetuneConfig) -> bool:
        """True where one frozen embedding per frame serves the policy and the critic alike."""
        if config.camera_encoder != "frozen" or not policy.config.images:
            return False
        if not critic.config.images:
            return True
        ours, theirs = policy.config, critic.config
        if (theirs.images, theirs.image_pool) != (ours.images, ours.image_pool):
            return False
        mine, its = policy.encoder.cameras.state_dict(), critic.encoder.cameras.state_dict()
        return mine.keys() == its.keys() and all(torch.equal(mine[k], its[k]) for k in mine)

    def view(self, replay: ReplayBuffer) -> ReplayBuffer:
        """``replay`` with each batch's frames replaced by their embeddings; only batches not seen before go
        through the CNN. Batches that left the replay are forgotten."""
        current = {id(b): b for b in replay.batches}
        self._views = {k: v for k, v in self._views.items() if current.get(k) is v[0]}
        out = ReplayBuffer(replay.capacity)
        out.batches = [self._embedded(b) for b in replay.batches]
        return out

    def demos(self, data: Any) -> Any:
        """The BC term's demonstrations (a :class:`~gipo_robot.policies.bc.BCData`) with their frames replaced
        by embeddings; embedded again only when the learner is given other demonstrations (an arm adds each
        intervention's steps by building a new one)."""
        if self._demos is None or self._demos[0] is not data:
            self._demos = (data, dataclasses.replace(data, obs=self._embed_all(data.obs)))
        return self._demos[1]

    def _embedded(self, batch: RolloutBatch) -> RolloutBatch:
        known = self._views.get(id(batch))
        if known is not None:
            return known[1]
        view = dataclasses.replace(
            batch,
            obs=self._embed_all(batch.obs),
            next_obs=self._embed_all(batch.next_obs),
            final_images=self._embed_all(batch.final_images),
        )
        self._views[id(batch)] = (batch, view)
        return view

    def _embed_all(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: self._embed(k, v) if k in self.names else v for k, v in features.items()}

    @torch.no_grad()
    def _embed(self, name: str, frames: Tensor) -> Tensor:
        """``(*lead, C, h, w)`` uint8 frames -> ``(*lead, D)`` embeddings, on the CPU like the replay."""
        lead, flat = frames.shape[:-3], frames.reshape(-1, *frames.shape[-3:])
        if not len(flat):  # no step of the batch ended an episode: no final frames
            return torch.zeros(*lead, self.dim)
        device = next(self.cameras[name].parameters()).device
        parts = [
            self.cameras[name](flat[i : i + EMBED_CHUNK].to(device)).cpu()
            for i in range(0, len(flat), EMBED_CHUNK)
        ]
        self.embedded_frames += len(flat)
        return torch.cat(parts).reshape(*lead, -1)
