"""Staleness-aware replay: the last K rollout batches, each tagged with the policy version that collected it.

A *batch* is what one fine-tuning iteration collects: ``T`` decision steps in each of ``N`` environments,
time-first so advantages can be computed along time. K = ``capacity`` is the "replay buffer size" in policy
versions: K = 1 keeps only the newest batch (near on-policy), K = 16 also replays data from 15 policy
updates ago. Every recorded step also goes to the episode store (the durable record); the buffer holds the
tensors the learner needs, including the behaviour log-probs per action dimension.

Shapes: ``T`` decision steps, ``N`` environments, ``H`` chunk length, ``A`` action size, ``M`` = T·N samples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

__all__ = ["ReplayBuffer", "RolloutBatch"]


@dataclass
class RolloutBatch:
    """One iteration's rollouts.

    Attributes:
        obs: feature -> ``(T, N, *shape)``, the observation each chunk was chosen from.
        next_obs: feature -> ``(T, N, *shape)``, the observation after the executed steps (the episode's
            real final observation where it ended, not the next episode's first).
        actions: ``(T, N, H, A)`` raw sampled chunks (what ``logp_behavior`` scores).
        logp_behavior: ``(T, N, H, A)`` behaviour log-probs per chunk step and dimension.
        exec_mask: ``(T, N, H)`` True for the chunk steps that were executed.
        rewards: ``(T, N)`` summed over the executed steps.
        terminated: ``(T, N)`` bool, the episode reached a terminal state.
        truncated: ``(T, N)`` bool, the episode was cut (time limit, or the end of the iteration).
        version: the policy version that collected the batch.
        final_images: camera feature -> ``(D, C, h, w)`` uint8, the frame after each of the ``D`` steps that
            ended an episode or the iteration (``terminated | truncated``), in ``(t, n)`` order. A camera
            feature in ``obs`` but not in ``next_obs`` takes its next frames from here and from ``obs[t + 1]``
            (:meth:`next_observation`); empty for state-only policies.
    """

    obs: dict[str, Tensor]
    next_obs: dict[str, Tensor]
    actions: Tensor
    logp_behavior: Tensor
    exec_mask: Tensor
    rewards: Tensor
    terminated: Tensor
    truncated: Tensor
    version: int
    final_images: dict[str, Tensor] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``."""
        return tuple(self.rewards.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        t, n = self.shape
        return t * n

    def next_observation(self) -> dict[str, Tensor]:
        """``next_obs`` with every feature ``(T, N, ...)``: a camera frame held once is rebuilt from
        ``obs[t + 1]`` where the episode went on and from ``final_images`` where it ended or was cut."""
        out = dict(self.next_obs)
        ended = self.terminated | self.truncated
        for k, frames in self.final_images.items():
            nxt = torch.empty_like(self.obs[k])
            nxt[:-1] = self.obs[k][1:]
            nxt[ended] = frames
            out[k] = nxt
        return out

    def flat(self, name: str) -> Tensor | dict[str, Tensor]:
        """A field with ``(T, N)`` merged into ``M`` (``next_obs`` with its camera frames rebuilt)."""
        value = self.next_observation() if name == "next_obs" else getattr(self, name)
        if isinstance(value, dict):
            return {k: v.reshape(-1, *v.shape[2:]) for k, v in value.items()}
        return value.reshape(-1, *value.shape[2:])

    def to_tensors(self, prefix: str) -> dict[str, Tensor]:
        """Flat name -> tensor map for safetensors (``version`` goes in as a 0-d tensor)."""
        out: dict[str, Tensor] = {f"{prefix}version": torch.tensor(self.version)}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                out.update({f"{prefix}{f.name}/{k}": v.contiguous() for k, v in value.items()})
            elif isinstance(value, Tensor):
                out[f"{prefix}{f.name}"] = value.contiguous()
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str) -> RolloutBatch:
        kwargs: dict = {"obs": {}, "next_obs": {}, "final_images": {}}
        for key, value in tensors.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            if "/" in name:
                group, feature = name.split("/", 1)
                kwargs[group][feature] = value
            elif name == "version":
                kwargs["version"] = int(value.item())
            else:
                kwargs[name] = value
        return cls(**kwargs)


class ReplayBuffer:
    """The last ``capacity`` batches, oldest evicted first.

    Args:
        capacity: K, batches (policy versions) kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.batches: list[RolloutBatch] = []

    def add(self, batch: RolloutBatch, *, any_order: bool = False) -> list[RolloutBatch]:
        """Append ``batch``; returns the evicted batches (the earliest added first).

        Args:
            batch: the newest batch.
            any_order: accept a version at or below the last one's. Asynchronous collection needs it: two
                workers collect with the same weights, and a slow worker's batch arrives after a newer one.
                Eviction stays by arrival; the staleness histogram counts each batch by its own version.

        Raises:
            ValueError: (unless ``any_order``) versions not increasing, which in lockstep collection means
                a batch was added twice or out of place.
        """
        if not any_order and self.batches and batch.version <= self.batches[-1].version:
            raise ValueError(
                f"batches must arrive in increasing policy version, got {batch.version} "
                f"after {self.batches[-1].version}"
            )
        self.batches.append(batch)
        evicted = self.batches[: -self.capacity]
        self.batches = self.batches[-self.capacity :]
        return evicted

    def __len__(self) -> int:
        """Samples held (decision steps over all batches)."""
        return sum(len(b) for b in self.batches)

    def staleness(self, current_version: int) -> dict[int, int]:
        """Samples per age ``current_version - batch.version`` (0 = collected by the current policy)."""
        hist: Counter[int] = Counter()
        for b in self.batches:
            hist[current_version - b.version] += len(b)
        return dict(sorted(hist.items()))

    def minibatches(self, batch_size: int, n_batches: int, generator: torch.Generator) -> list[Tensor]:
        """``n_batches`` index sets into the concatenation of all batches (samples drawn without replacement
        within an epoch over the buffer, reshuffled when exhausted)."""
        total = len(self)
        if total == 0:
            raise ValueError("the replay buffer is empty")
        out, perm, pos = [], torch.randperm(total, generator=generator), 0
        for _ in range(n_batches):
            if pos + batch_size > total:
                perm, pos = torch.randperm(total, generator=generator), 0
            out.append(perm[pos : pos + min(batch_size, total)])
            pos += batch_size
        return out

    def to_tensors(self) -> dict[str, Tensor]:
        """Everything, for a safetensors checkpoint."""
        out: dict[str, Tensor] = {"capacity": torch.tensor(self.capacity)}
        for i, b in enumerate(self.batches):
            out.update(b.to_tensors(f"batch{i}."))
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> ReplayBuffer:
        buf = cls(int(tensors["capacity"].item()))
        i = 0
        while f"batch{i}.version" in tensors:
            buf.batches.append(RolloutBatch.from_tensors(tensors, f"batch{i}."))
            i += 1
        return buf
