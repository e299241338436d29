"""Training views of an episode store: random transitions, action chunks, observation history, episodes.

Every committed step ``t`` of the selected episodes is one sample ("anchor"). A sample holds

- the observation history ending at ``t``: steps ``t-To+1 .. t`` of every observation feature,
  ``(To, *shape)``; steps before the episode start repeat its first step, ``obs_mask`` ``(To,)`` marks
  the real ones;
- the action chunk starting at ``t``: steps ``t .. t+H-1`` of ``action`` and of the other per-step
  features (reward, terminated, truncated, logp, policy_version, ...), ``(H, *shape)``; steps past the
  episode end repeat its last step, ``action_mask`` ``(H,)`` marks the real ones;
- with ``next_obs``, the observation at ``t+H`` (the state after the chunk), ``next_obs.<key>`` ``(*shape)``,
  clamped to the last step, and ``next_valid`` (False where ``t+H`` is past the end).

This is Diffusion Policy's ``SequenceSampler`` with ``pad_before = To - 1`` and ``pad_after = H - 1``
(edge padding by repetition, every step an anchor). ``H = To = 1`` gives plain random transitions.

Legend: ``B`` batch, ``To`` observation history, ``H`` action chunk length, ``A`` action size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.schema import DatasetError
from gipo_robot.datasets.store import EpisodeStore


@dataclass(frozen=True)
class SamplerConfig:
    """What a sample holds.

    Attributes:
        horizon: action chunk length ``H`` (1 for single transitions).
        obs_history: observation steps ``To`` up to and including the anchor step.
        obs_keys: observation features; ``None`` takes every feature named ``obs.*``.
        step_keys: per-step features returned as chunks aligned with the actions; ``None`` takes every
            feature that is not an observation (``action``, ``reward``, ``logp``, ...).
        next_obs: also return the observation at ``t + H`` and ``next_valid``.
    """

    horizon: int = 1
    obs_history: int = 1
    obs_keys: tuple[str, ...] | None = None
    step_keys: tuple[str, ...] | None = None
    next_obs: bool = False

    def __post_init__(self) -> None:
        for name in ("horizon", "obs_history"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DatasetError(f"SamplerConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("obs_keys", "step_keys"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))


class EpisodeSampler:
    """Draws samples (see the module docstring) from the chosen episodes of a store.

    Args:
        store: an open store.
        config: the sample layout.
        episodes: episode indices to draw from (``None``: all), e.g. ``store.episodes(source="demo")``.
    """

    def __init__(
        self, store: EpisodeStore, config: SamplerConfig | None = None, episodes: Sequence[int] | None = None
    ) -> None:
        self.store = store
        self.config = config or SamplerConfig()
        names = store.schema.names
        obs = self.config.obs_keys
        obs = tuple(n for n in names if n.startswith("obs.")) if obs is None else obs
        step = self.config.step_keys
        step = tuple(n for n in names if not n.startswith("obs.")) if step is None else step
        for key in (*obs, *step):
            if key not in store.schema:
                raise DatasetError(f"no such feature; the schema has {names}", path=store.path, feature=key)
        self.obs_keys, self.step_keys = obs, step
        chosen = np.arange(store.n_episodes) if episodes is None else np.asarray(episodes, dtype=np.int64)
        if chosen.size and (chosen.min() < 0 or chosen.max() >= store.n_episodes):
            raise DatasetError(f"episode indices outside 0..{store.n_episodes - 1}", path=store.path)
        self.episode_ids = chosen
        ends = store.episode_ends
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        self._ep_start, self._ep_end = starts[chosen], ends[chosen]
        lengths = self._ep_end - self._ep_start
        # anchor k -> (episode position p, global row t)
        self._anchor_ep = np.repeat(np.arange(chosen.size), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        self._anchor_row = np.repeat(self._ep_start, lengths) + offsets

    def __len__(self) -> int:
        """Number of anchors: every step of the chosen episodes."""
        return int(self._anchor_row.size)

    def sample(self, index: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """The samples at anchor indices ``index`` ``(B,)``, stacked: ``{key: (B, ...)}``.

        Returns:
            ``obs.<key>`` ``(B, To, *shape)``, ``obs_mask`` ``(B, To)``, each step key ``(B, H, *shape)``,
            ``action_mask`` ``(B, H)``, ``episode`` ``(B,)`` (store episode index), ``step`` ``(B,)``
            (step within the episode); with ``next_obs`` also ``next_obs.<key>`` ``(B, *shape)`` and
            ``next_valid`` ``(B,)``.
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise DatasetError(f"sample index outside 0..{len(self) - 1}", path=self.store.path)
        cfg = self.config
        t = self._anchor_row[index]
        ep = self._anchor_ep[index]
        lo, hi = self._ep_start[ep], self._ep_end[ep]
        obs_raw = t[:, None] - cfg.obs_history + 1 + np.arange(cfg.obs_history)[None]
        obs_rows = np.maximum(obs_raw, lo[:, None])
        act_raw = t[:, None] + np.arange(cfg.horizon)[None]
        act_rows = np.minimum(act_raw, hi[:, None] - 1)
        out: dict[str, np.ndarray] = {}
        b = index.size
        obs_values = self.store.read_rows(obs_rows.reshape(-1), self.obs_keys)
        for k, v in obs_values.items():
            out[k] = v.reshape(b, cfg.obs_history, *v.shape[1:])
        step_values = self.store.read_rows(act_rows.reshape(-1), self.step_keys)
        for k, v in step_values.items():
            out[k] = v.reshape(b, cfg.horizon, *v.shape[1:])
        out["obs_mask"] = obs_raw >= lo[:, None]
        out["action_mask"] = act_raw < hi[:, None]
        out["episode"] = self.episode_ids[ep]
        out["step"] = t - lo
        if cfg.next_obs:
            nxt = t + cfg.horizon
            next_values = self.store.read_rows(np.minimum(nxt, hi - 1), self.obs_keys)
            for k, v in next_values.items():
                out["next_" + k] = v
            out["next_valid"] = nxt < hi
        return out

    def random_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` samples drawn uniformly with replacement over all anchors."""
        if len(self) == 0:
            raise DatasetError("no steps to sample from", path=self.store.path)
        return self.sample(rng.integers(0, len(self), size=batch_size))

    def episode(self, position: int) -> dict[str, np.ndarray]:
        """The whole ``position``-th chosen episode, every feature ``(T, *shape)``."""
        return self.store.episode(int(self.episode_ids[position]), [*self.obs_keys, *self.step_keys])


class ChunkDataset(torch.utils.data.Dataset):
    """A map-style torch ``Dataset`` of :class:`EpisodeSampler` samples, safe with ``num_workers > 0``.

    Each process opens the store itself, read-only, on first use (the handle is never pickled), so
    workers work with both ``fork`` and ``spawn``. Items are dicts of torch tensors; the default
    ``collate_fn`` stacks them into ``(B, ...)`` (``episode``/``step`` as int64, masks as
    bool). Use :meth:`batch` for whole minibatches in one read.

    Args:
        path: the store (path or URL).
        config: the sample layout.
        episodes: episode indices to draw from (``None``: all).
    """

    def __init__(
        self, path: str | Path, config: SamplerConfig | None = None, episodes: Sequence[int] | None = None
    ) -> None:
        self.path = str(path)
        self.config = config or SamplerConfig()
        self.episodes = None if episodes is None else [int(e) for e in episodes]
        self._pid: int | None = None
        self._sampler: EpisodeSampler | None = None
        self._length = len(self._get())

    def _get(self) -> EpisodeSampler:
        if self._sampler is None or self._pid != os.getpid():
            store = open_dataset(self.path)
            self._sampler = EpisodeSampler(store, self.config, self.episodes)
            self._pid = os.getpid()
        return self._sampler

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sampler"] = None
        state["_pid"] = None
        return state

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return _to_torch(self._get().sample([index]), squeeze=True)

    def batch(self, index: Sequence[int]) -> dict[str, torch.Tensor]:
        """Samples ``index`` ``(B,)`` as one read: ``{key: tensor (B, ...)}``."""
        return _to_torch(self._get().sample(index), squeeze=False)


def _to_torch(values: dict[str, np.ndarray], *, squeeze: bool) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.array(v[0] if squeeze else v)) for k, v in values.items()}
