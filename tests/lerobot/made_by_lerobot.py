"""Datasets and policies made by LeRobot 0.6 itself, for the adapter tests (import where lerobot is).

- :func:`record_dataset`: an SO-101-like arm dataset recorded with LeRobot's own API
  (``LeRobotDataset.create``, ``add_frame``, ``save_episode``, ``finalize``), with an optional wrist camera
  stored as PNG frames (``"image"``) or as LeRobot's default mp4 (``"video"``).
- :func:`train_act`: a tiny ACT trained on such a dataset the way ``lerobot-train`` trains one: LeRobot's
  ``TrainPipelineConfig`` and its validation (optimiser/scheduler presets), ``make_train_eval_datasets``
  (action chunks through ``delta_timestamps``), ``make_policy``, processors from the dataset's statistics,
  ``policy.forward``'s loss, gradient clipping, and the checkpoint written by LeRobot's ``save_checkpoint``
  (``checkpoints/<step>/pretrained_model`` with the two processor pipelines next to the model). Only
  ``Accelerator`` is left out: ``lerobot-train`` needs ``lerobot[training]`` (accelerate), which a
  ``lerobot[dataset]`` install does not have.

Legend: ``T`` steps of an episode, ``J`` joints (6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lerobot.common.train_utils import get_step_checkpoint_dir, save_checkpoint, update_last_checkpoint
from lerobot.configs.default import DatasetConfig
from lerobot.configs.train import TrainPipelineConfig
from lerobot.datasets.factory import make_train_eval_datasets
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.optim.factory import make_optimizer_and_scheduler
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.factory import make_policy, make_pre_post_processors
from lerobot.utils.random_utils import set_seed

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
FPS = 30
CAMERA = "observation.images.wrist"
#: A tiny ACT (CPU, seconds): every size LeRobot lets us shrink, and no pretrained backbone to download.
TINY_ACT = dict(
    dim_model=16, n_heads=2, dim_feedforward=32, n_encoder_layers=1, n_decoder_layers=1, latent_dim=4,
    n_vae_encoder_layers=1, pretrained_backbone_weights=None,
)  # fmt: skip
ARM_INPUTS = {"observation.state": {"joint_pos": [6]}, "observation.environment_state": {"joint_vel": [6]}}
"""How gipo-robot's serial arm observations (``joint_pos``, ``joint_vel``) form the ACT's inputs."""


def arm_features(camera: str | None, size: tuple[int, int] = (32, 48)) -> dict[str, dict]:
    """LeRobot features of the arm: joint positions (state), joint velocities (environment state), the
    commanded positions (action), and a wrist camera of ``size`` stored as ``camera`` (image or video)."""
    pos, vel = [f"{j}.pos" for j in JOINTS], [f"{j}.vel" for j in JOINTS]
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": pos},
        "observation.environment_state": {"dtype": "float32", "shape": (6,), "names": vel},
        "action": {"dtype": "float32", "shape": (6,), "names": pos},
    }
    if camera is not None:
        features[CAMERA] = {"dtype": camera, "shape": (*size, 3), "names": ["height", "width", "channels"]}
    return features


def arm_episode(seed: int, length: int, size: tuple[int, int] | None) -> dict[str, np.ndarray]:
    """One episode: the arm follows a smooth random path; the action is the next position; the camera sees
    smooth gradients that move with the arm (like a rendered scene: what video codecs are made for)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + 1)[:, None] / FPS
    path = 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6, 6) * t + rng.uniform(0, 6.3, 6))  # (T+1, J) rad
    episode = {
        "observation.state": path[:-1].astype(np.float32),
        "observation.environment_state": (np.diff(path, axis=0) * FPS).astype(np.float32),
        "action": path[1:].astype(np.float32),
    }
    if size is not None:
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        phase = (xx[None] + yy[None]) / 24.0 + 4 * path[:-1, :1, None]  # (T, H, W)
        rgb = np.stack([np.sin(phase + c) for c in (0.0, 2.0, 4.0)], axis=-1)
        episode[CAMERA] = ((rgb + 1) * 127.5).astype(np.uint8)
    return episode


def record_dataset(
    root: Path,
    lengths: tuple[int, ...] = (20, 14),
    *,
    camera: str | None = None,
    size: tuple[int, int] = (32, 48),
) -> list[dict[str, np.ndarray]]:
    """Record episodes of ``lengths`` steps into a new LeRobot dataset at ``root`` with LeRobot's own API
    (task "reach", robot type ``so101_follower``). Returns the frames as they were added, per episode."""
    dataset = LeRobotDataset.create(
        "local/arm",
        fps=FPS,
        features=arm_features(camera, size),
        root=root,
        robot_type="so101_follower",
        use_videos=camera == "video",
        video_backend="pyav",
    )
    episodes = []
    for e, length in enumerate(lengths):
        episode = arm_episode(e, length, size if camera else None)
        for t in range(length):
            dataset.add_frame({**{k: v[t] for k, v in episode.items()}, "task": "reach"})
        dataset.save_episode()
        episodes.append(episode)
    dataset.finalize()
    return episodes


def train_act(dataset_root: Path, out: Path, *, steps: int = 4, chunk: int = 4, seed: int = 0) -> Path:
    """Train a tiny ACT (CPU, ``steps`` updates of batch 4) on the dataset at ``dataset_root`` as
    ``lerobot-train`` does (module docstring); the run goes to ``out``. Returns its
    ``checkpoints/last/pretrained_model`` folder."""
    policy_config = ACTConfig(
        chunk_size=chunk,
        n_action_steps=chunk,
        **TINY_ACT,
        device="cpu",
        push_to_hub=False,
    )
    cfg = TrainPipelineConfig(
        dataset=DatasetConfig(repo_id="local/arm", root=str(dataset_root), video_backend="pyav"),
        policy=policy_config,
        output_dir=out,
        steps=steps,
        batch_size=4,
        num_workers=0,
        seed=seed,
        save_freq=steps,
        log_freq=0,
    )
    cfg.validate()
    set_seed(cfg.seed)
    dataset, _ = make_train_eval_datasets(cfg)
    policy = make_policy(cfg.policy, ds_meta=dataset.meta)
    preprocessor, postprocessor = make_pre_post_processors(cfg.policy, dataset_stats=dataset.meta.stats)
    optimizer, scheduler = make_optimizer_and_scheduler(cfg, policy)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    batches = iter(loader)
    policy.train()
    for _ in range(cfg.steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        loss, _ = policy.forward(preprocessor(batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.optimizer.grad_clip_norm)
        optimizer.step()
        optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()
    checkpoint = get_step_checkpoint_dir(cfg.output_dir, cfg.steps, cfg.steps)
    save_checkpoint(checkpoint, cfg.steps, cfg, policy, optimizer, scheduler, preprocessor, postprocessor)
    update_last_checkpoint(checkpoint)
    return out / "checkpoints" / "last" / "pretrained_model"
