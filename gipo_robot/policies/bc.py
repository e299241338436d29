"""Behaviour cloning of a :class:`GaussianPolicy` from an :class:`EpisodeStore`.

The loss is the negative log-likelihood of demonstrated action chunks (per valid chunk step, padded steps
past an episode's end masked out), optionally plus an MSE on the chunk mean. Episodes, not steps, are split
into training and validation sets, so validation measures generalisation to unseen demonstrations. Training
runs for a fixed number of gradient steps with a cosine learning-rate schedule, gradient clipping, early
stopping on the validation NLL (the best weights are kept), a progress bar, TensorBoard scalars and a CSV.

Camera policies: which features the policy reads is an observation set (:mod:`~gipo_robot.policies.obs_sets`,
``BCConfig.obs_set``); camera frames (``<camera>_image``) stay uint8 in memory, ``(N, C, h, w)``, and each
training minibatch is augmented with a random shift (:func:`~gipo_robot.policies.augment.random_shift`,
``BCConfig.image_shift``), never a validation batch. Only low-dim features get normalisation statistics.

Shapes: ``B`` batch, ``H`` chunk length, ``A`` action dimension, ``N`` samples (one per demonstrated step),
``C``/``h``/``w`` image channels, height and width.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gipo_robot.datasets import DatasetError, EpisodeStore
from gipo_robot.datasets.sampler import EpisodeSampler, SamplerConfig
from gipo_robot.policies.augment import random_shift
from gipo_robot.policies.checkpoint import save_policy
from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from gipo_robot.policies.obs_sets import OBS_SETS, is_camera, select_features

__all__ = ["BCConfig", "BCResult", "load_bc_data", "train_bc"]

OBS_PREFIX = "obs."


@dataclass
class BCConfig:
    """Behaviour-cloning settings (saved in the checkpoint's provenance).

    Attributes:
        chunk: H, actions predicted per observation (1 = single-step policy).
        obs_keys: store features to condition on (``obs.<name>``, cameras included); None: ``obs_set``.
        obs_set: the observation set (:data:`~gipo_robot.policies.obs_sets.OBS_SETS`) chosen from the
            store's ``obs.*`` features when ``obs_keys`` is None; ``auto`` reads cameras + proprioception
            from a store with a camera, every low-dim feature from one without.
        image_shift: random-shift augmentation of training minibatches' camera frames, in pixels (DrQ's 4
            at 84x84; 0 disables). Validation and inference see the frames unchanged.
        image_pool: how the camera CNN pools its feature map (:attr:`PolicyConfig.image_pool`).
        cnn_channels: the camera CNN's conv channels (:attr:`PolicyConfig.cnn_channels`).
        hidden: MLP trunk sizes.
        state_dependent_std: see :class:`PolicyConfig`.
        log_std_init: initial log-std in normalised action units.
        steps: gradient steps (the cosine schedule spans them).
        batch_size: samples per gradient step.
        lr: peak learning rate (AdamW), decayed to 0 by a cosine schedule after ``warmup_steps``.
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        grad_clip: maximum global gradient norm.
        mse_weight: weight of an extra MSE between the chunk mean and the demonstrated chunk (0 = NLL only).
        val_fraction: fraction of episodes held out for validation (at least one when there are two or more).
        eval_every: gradient steps between validation passes.
        patience: validation passes without improvement before stopping early (0 disables early stopping).
        success_only: train only on episodes marked successful.
        sources: episode sources to train on (e.g. ``["demo", "teleop"]``); None takes all.
        seed: seeds the split, the initialisation and the minibatch order.
    """

    chunk: int = 4
    obs_keys: list[str] | None = None
    obs_set: str = "auto"
    image_shift: int = 4
    image_pool: str = "spatial_softmax"
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    state_dependent_std: bool = False
    log_std_init: float = -1.0
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    mse_weight: float = 0.0
    val_fraction: float = 0.1
    eval_every: int = 100
    patience: int = 10
    success_only: bool = False
    sources: list[str] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("chunk", "steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"BCConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"BCConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"BCConfig.lr and grad_clip must be positive, got {self.lr}, {self.grad_clip}")
        if self.patience < 0 or self.warmup_steps < 0 or self.mse_weight < 0:
            raise ValueError("BCConfig.patience, warmup_steps and mse_weight must be >= 0")
        if self.obs_set not in OBS_SETS:
            raise ValueError(f"BCConfig.obs_set {self.obs_set!r} is not one of {', '.join(OBS_SETS)}")
        if self.image_shift < 0:
            raise ValueError(f"BCConfig.image_shift must be >= 0 pixels, got {self.image_shift}")


@dataclass
class BCData:
    """Demonstrations in memory, one sample per demonstrated step.

    Attributes:
        obs: feature name (without ``obs.``) -> ``(N, *shape)`` float32 (low-dim) or ``(N, C, h, w)`` uint8
            (cameras, channels first as a policy reads them).
        actions: ``(N, H, A)`` demonstrated chunks, edge-padded.
        mask: ``(N, H)`` True for real (not padded) chunk steps.
        episode: ``(N,)`` store episode index of each sample.
        images: the camera features of ``obs``.
    """

    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    mask: torch.Tensor
    episode: torch.Tensor
    images: tuple[str, ...] = ()

    def subset(self, rows: torch.Tensor) -> BCData:
        obs = {k: v[rows] for k, v in self.obs.items()}
        return BCData(obs, self.actions[rows], self.mask[rows], self.episode[rows], self.images)

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def _obs_keys(store: EpisodeStore, keys: list[str] | None, obs_set: str = "auto") -> list[str]:
    """The store features (``obs.<name>``) to train on: ``keys`` checked, or ``obs_set``'s selection from the
    store's observation features (camera frames are image features named ``<camera>_image``)."""
    if keys is None:
        available = [
            f.name[len(OBS_PREFIX) :]
            for f in store.schema.features
            if f.name.startswith(OBS_PREFIX) and (f.kind == "image") == is_camera(f.name)
        ]
        if not available:
            raise DatasetError("has no observation features (obs.*) to train on", path=store.path)
        try:
            chosen = select_features(obs_set, available, where="the store")
        except ValueError as err:
            raise DatasetError(str(err), path=store.path) from None
        return [OBS_PREFIX + k for k in chosen]
    for k in keys:
        if k not in store.schema:
            raise DatasetError(
                f"no such observation feature; the schema has {store.schema.names}",
                path=store.path,
                feature=k,
            )
    return list(keys)


def load_bc_data(store: EpisodeStore, config: BCConfig) -> tuple[BCData, list[int]]:
    """Read the chosen episodes' observations and action chunks into memory.

    Returns:
        The data and the store episode indices it came from.

    Raises:
        DatasetError: no matching episodes, a missing feature, or no ``action`` feature.
    """
    if "action" not in store.schema:
        raise DatasetError("has no 'action' feature", path=store.path)
    episodes = store.episodes(source=config.sources, success=True if config.success_only else None).tolist()
    if not episodes:
        raise DatasetError(
            f"no episodes to train on (success_only={config.success_only}, sources={config.sources})",
            path=store.path,
        )
    keys = _obs_keys(store, config.obs_keys, config.obs_set)
    sampler = EpisodeSampler(
        store, SamplerConfig(horizon=config.chunk, obs_keys=tuple(keys), step_keys=("action",)), episodes
    )
    batch = sampler.sample(np.arange(len(sampler)))
    images = tuple(k[len(OBS_PREFIX) :] for k in keys if store.schema[k].kind == "image")
    obs = {}
    for k in keys:
        x = batch[k][:, 0]
        if k[len(OBS_PREFIX) :] in images:  # (N, h, w, C) uint8 -> (N, C, h, w) uint8
            obs[k[len(OBS_PREFIX) :]] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
        else:
            obs[k[len(OBS_PREFIX) :]] = torch.from_numpy(x.astype(np.float32))
    data = BCData(
        obs=obs,
        actions=torch.from_numpy(batch["action"].astype(np.float32)),
        mask=torch.from_numpy(batch["action_mask"]),
        episode=torch.from_numpy(batch["episode"]),
        images=images,
    )
    return data, list(episodes)


def split_episodes(episodes: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Shuffle episodes with ``seed`` and hold out ``val_fraction`` of them (at least one if there are 2+)."""
    order = np.random.default_rng(seed).permutation(episodes).tolist()
    n_val = 0 if val_fraction == 0 or len(order) < 2 else max(1, round(val_fraction * len(order)))
    return order[n_val:], order[:n_val]


def action_bounds(actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds the policy models actions in: [-1, 1] when the data fits (normalised robot actions, as in
    robosuite), else the data's per-dimension min/max widened by 5% of the range."""
    flat = actions.reshape(-1, actions.shape[-1])
    lo, hi = flat.min(0).values, flat.max(0).values
    if (lo >= -1).all() and (hi <= 1).all():
        return -torch.ones_like(lo), torch.ones_like(hi)
    margin = 0.05 * (hi - lo).clamp(min=1e-3)
    return lo - margin, hi + margin


def bc_loss(
    policy: GaussianPolicy, data: BCData, mse_weight: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Masked NLL per chunk step (+ optional MSE of the mean); returns ``(loss, {"nll", "mse"})``."""
    mean, log_std = policy.distribution_params(data.obs)  # one encoder pass for both terms
    logp = policy.log_prob_from_params(mean, log_std, data.actions).sum(-1)  # (B, H)
    m = data.mask.float()
    nll = -(logp * m).sum() / m.sum().clamp(min=1)
    mean = mean * policy.action_scale + policy.action_offset  # environment units
    mse = (((mean - data.actions) ** 2).mean(-1) * m).sum() / m.sum().clamp(min=1)
    return nll + mse_weight * mse, {"nll": nll.detach(), "mse": mse.detach()}


@dataclass
class BCResult:
    """What :func:`train_bc` produced.

    Attributes:
        policy: the trained policy (best validation weights).
        history: one dict per validation pass (step, train_nll, val_nll, val_mse, lr).
        best_step: gradient step of the kept weights.
        train_episodes / val_episodes: the split.
        stopped_early: whether early stopping ended training.
        wall_s: training time.
    """

    policy: GaussianPolicy
    history: list[dict[str, float]]
    best_step: int
    train_episodes: list[int]
    val_episodes: list[int]
    stopped_early: bool
    wall_s: float


def train_bc(
    store: EpisodeStore,
    config: BCConfig,
    *,
    out: str | Path | None = None,
    progress: bool = True,
    on_eval: Callable[[dict[str, float]], None] | None = None,
) -> BCResult:
    """Train a Gaussian policy by behaviour cloning; with ``out``, write a checkpoint and run artifacts.

    Args:
        store: an open store with ``obs.*`` features and ``action``.
        config: training settings.
        out: checkpoint directory: ``config.json`` + ``model.safetensors``, ``metrics.csv``,
            ``loss_curve.png`` and TensorBoard events under ``tb/``. None writes nothing.
        progress: show a progress bar (on stderr).
        on_eval: called with each validation record.

    Raises:
        DatasetError: the store has nothing to train on.
    """
    torch.manual_seed(config.seed)
    data, episodes = load_bc_data(store, config)
    train_eps, val_eps = split_episodes(episodes, config.val_fraction, config.seed)
    in_val = torch.isin(data.episode, torch.tensor(val_eps, dtype=data.episode.dtype))
    train, val = data.subset(torch.nonzero(~in_val).squeeze(1)), data.subset(torch.nonzero(in_val).squeeze(1))
    policy = _new_policy(store, data, config)
    writer = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        writer = _tensorboard(out / "tb")
    start = time.perf_counter()
    history, best_step, stopped_early = _fit(policy, train, val, config, writer, progress, on_eval)
    result = BCResult(
        policy=policy,
        history=history,
        best_step=best_step,
        train_episodes=train_eps,
        val_episodes=val_eps,
        stopped_early=stopped_early,
        wall_s=time.perf_counter() - start,
    )
    if writer is not None:
        writer.close()
    if out is not None:
        _save_run(out, store, config, result)
    return result


def _new_policy(store: EpisodeStore, data: BCData, config: BCConfig) -> GaussianPolicy:
    """A fresh policy for ``data``'s features, low-dim ones normalised with the store's statistics, and the
    data's action bounds."""
    low_dim = [k for k in data.obs if k not in data.images]
    policy = GaussianPolicy(
        PolicyConfig(
            low_dim={k: list(data.obs[k].shape[1:]) for k in low_dim},
            images={k: list(data.obs[k].shape[1:]) for k in data.images},
            action_dim=data.actions.shape[-1],
            chunk=config.chunk,
            hidden=list(config.hidden),
            cnn_channels=list(config.cnn_channels),
            image_pool=config.image_pool,
            state_dependent_std=config.state_dependent_std,
            log_std_init=config.log_std_init,
        )
    )
    if low_dim:
        stats = store.stats([OBS_PREFIX + k for k in low_dim])
        policy.encoder.set_obs_stats(
            {k: torch.tensor(stats[OBS_PREFIX + k]["mean"]) for k in low_dim},
            {k: torch.tensor(stats[OBS_PREFIX + k]["std"]) for k in low_dim},
        )
    policy.set_action_bounds(*action_bounds(data.actions))
    return policy


def _tensorboard(path: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` at ``path``, or None where tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a runtime dependency; tolerate its absence in odd installs
        return None
    return SummaryWriter(str(path))


def _lr_at(step: int, config: BCConfig) -> float:
    """The learning rate at gradient ``step``: linear warm-up, then cosine decay to 0 at ``config.steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress_frac = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_frac)))


def _fit(
    policy: GaussianPolicy,
    train: BCData,
    val: BCData,
    config: BCConfig,
    writer: Any,
    progress: bool,
    on_eval: Callable[[dict[str, float]], None] | None,
) -> tuple[list[dict[str, float]], int, bool]:
    """The gradient steps, a validation pass every ``eval_every``, early stopping; leaves the best weights in
    ``policy``. Returns ``(history, best_step, stopped_early)``."""
    from tqdm import tqdm

    optim = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    best = (math.inf, 0, {k: v.clone() for k, v in policy.state_dict().items()})
    evals_without_improvement = 0
    stopped_early = False
    bar = tqdm(range(config.steps), desc="bc", disable=not progress, leave=False)
    running = []
    for step in bar:
        for group in optim.param_groups:
            group["lr"] = _lr_at(step, config)
        rows = torch.randint(0, len(train), (config.batch_size,), generator=gen)
        loss, parts = bc_loss(policy, augment(train.subset(rows), config.image_shift, gen), config.mse_weight)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
        optim.step()
        running.append(parts["nll"].item())
        if writer is not None:
            writer.add_scalar("train/nll", parts["nll"].item(), step)
            writer.add_scalar("train/grad_norm", grad_norm.item(), step)
        if (step + 1) % config.eval_every != 0 and step != config.steps - 1:
            continue
        record = _validate(policy, val, config, step, running)
        running = []
        criterion = record.get("val_nll", record["train_nll"])
        if criterion < best[0]:
            best = (criterion, step + 1, {k: v.clone() for k, v in policy.state_dict().items()})
            evals_without_improvement = 0
        else:
            evals_without_improvement += 1
        history.append(record)
        bar.set_postfix(
            train_nll=f"{record['train_nll']:.3f}", val_nll=f"{record.get('val_nll', math.nan):.3f}"
        )
        if writer is not None:
            for k, v in record.items():
                if k != "step":
                    writer.add_scalar(f"eval/{k}", v, step + 1)
        if on_eval is not None:
            on_eval(record)
        if config.patience and evals_without_improvement >= config.patience:
            stopped_early = True
            break
    bar.close()
    policy.load_state_dict(best[2])
    return history, best[1], stopped_early


def augment(batch: BCData, pad: int, generator: torch.Generator) -> BCData:
    """``batch`` with every camera's frames randomly shifted by up to ``pad`` pixels (a training minibatch;
    low-dim features, actions and a batch without cameras unchanged)."""
    if not pad or not batch.images:
        return batch
    obs = {k: random_shift(v, pad, generator) if k in batch.images else v for k, v in batch.obs.items()}
    return BCData(obs, batch.actions, batch.mask, batch.episode, batch.images)


VAL_BATCH = 256
"""Validation samples per forward pass of a camera policy (a low-dim policy sees the set in one pass)."""


def _validate(
    policy: GaussianPolicy, val: BCData, config: BCConfig, step: int, running: list[float]
) -> dict[str, float]:
    """The validation record after gradient ``step``: mean train NLL since the last one, lr, validation
    NLL and MSE (when there is a validation set)."""
    record = {"step": step + 1, "train_nll": float(np.mean(running)), "lr": _lr_at(step, config)}
    if not len(val):
        return record
    with torch.no_grad():
        if not val.images:
            _, vparts = bc_loss(policy, val, config.mse_weight)
            record["val_nll"], record["val_mse"] = vparts["nll"].item(), vparts["mse"].item()
            return record
        sums, weight = torch.zeros(2), 0.0  # per-batch means weighted by their real chunk steps
        for start in range(0, len(val), VAL_BATCH):
            part = val.subset(torch.arange(start, min(start + VAL_BATCH, len(val))))
            _, vparts = bc_loss(policy, part, config.mse_weight)
            w = float(part.mask.sum())
            sums += w * torch.stack([vparts["nll"], vparts["mse"]])
            weight += w
    record["val_nll"], record["val_mse"] = (sums / max(weight, 1.0)).tolist()
    return record


def _save_run(out: Path, store: EpisodeStore, config: BCConfig, result: BCResult) -> None:
    """The checkpoint (with the run's provenance), ``metrics.csv`` and ``loss_curve.png`` in ``out``."""
    history = result.history
    provenance = {
        "trainer": "bc",
        "store": str(store.path),
        "bc_config": asdict(config),
        "train_episodes": result.train_episodes,
        "val_episodes": result.val_episodes,
        "best_step": result.best_step,
        "final": history[-1] if history else {},
        "stopped_early": result.stopped_early,
    }
    save_policy(out, result.policy, provenance=provenance)
    _write_history(out / "metrics.csv", history)
    plot_losses(history, out / "loss_curve.png")


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    keys = sorted({k for r in history for k in r}, key=lambda k: (k != "step", k))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)


def plot_losses(history: list[dict[str, float]], path: str | Path) -> None:
    """Training and validation NLL per validation pass, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [r["step"] for r in history]
    ax.plot(steps, [r["train_nll"] for r in history], label="train NLL")
    if history and "val_nll" in history[0]:
        ax.plot(steps, [r["val_nll"] for r in history], label="validation NLL")
    ax.set_xlabel("gradient step")
    ax.set_ylabel("NLL per chunk step (nats)")
    ax.set_title("Behaviour cloning")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
