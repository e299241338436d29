"""The settings of one fine-tuning run: one dataclass, saved as ``config.json`` beside the run.

The dataclass is the single source of defaults: the CLI's flags read theirs from it, and
``gipo-robot finetune --config RUN/config.json`` starts a run from a saved one
(:func:`gipo_robot.configs.load_config`). Importing this module imports neither torch nor the simulator,
so the CLI reads its defaults cheaply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CAMERA_ENCODER_MODES", "CRITIC_OBS", "FinetuneConfig"]

#: What fine-tuning may do with a camera policy's encoders (:attr:`FinetuneConfig.camera_encoder`).
CAMERA_ENCODER_MODES: tuple[str, ...] = ("finetune", "frozen")
#: What the critic reads (:attr:`FinetuneConfig.critic_obs`).
CRITIC_OBS: tuple[str, ...] = ("policy", "state")


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run, saved as ``config.json`` next to it.

    Attributes:
        task: simulated task (Lift, Can, Square, Stack).
        objective: name in :data:`gipo_robot.objectives.OBJECTIVES` (gipo, ppo_clip, sapo, no_clip, cispo).
        objective_params: keyword parameters of the objective (e.g. ``{"sigma": 0.5}``); {} = its defaults.
        ratio_level: importance ratio per ``chunk``, chunk ``step`` or action ``dim`` (see ``at_level``).
        replay_size: K, rollout batches (policy versions) kept in the replay buffer; 1 = near on-policy.
        env_steps: total environment steps to collect.
        num_envs: N parallel environments.
        steps_per_env: T, decision steps per env per iteration (an iteration collects N·T env steps).
        backend: vector env backend, a name in :data:`gipo_robot.sim.vector.BACKENDS` (``subprocess``,
            ``sync`` or ``ray``).
        workers: W, Ray rollout workers (``backend="ray"`` only), each owning ``num_envs / W`` envs.
        ray_address: Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None starts Ray on this
            machine. ``backend="ray"`` only.
        async_collection: workers keep collecting with the last weights they have while the learner
            updates (``backend="ray"``; ``num_envs`` must be a multiple of ``workers``). An iteration
            consumes one worker's batch.
        max_lag: asynchronous collection drops a batch collected more than this many policy versions
            before the learner's current one (batches are typically ``workers - 1`` versions old: keep it
            at least that).
        policy_lag: controlled lag L (lockstep collection): each iteration's batch is collected by the policy
            of L versions before the current one (the first L iterations by version 0), and the buffer stays
            ``replay_size`` batches, so the data quantity is the same at every L; 0 collects on-policy.
            Its lag is logged as ``batch_lag``, as asynchronous collection's natural lag is.
        max_worker_restarts: Ray workers that may die (and be replaced) over the run before it stops.
        horizon: episode length limit in env steps; None = the task's default.
        epochs: passes worth of fresh data per iteration (sets the update-to-data ratio).
        minibatch_size: samples per gradient step.
        policy_lr: policy learning rate (Adam).
        critic_lr: critic learning rate (Adam).
        camera_encoder: what fine-tuning does with the camera encoders (the per-camera CNNs) of a policy that
            reads cameras: ``finetune`` trains the policy's at ``policy_lr × camera_encoder_lr_scale`` and
            the critic's own copy (initialised from the policy's) at ``critic_lr``; ``frozen`` keeps both at
            the pretrained weights (no gradient reaches them: a cheaper update, and features the trunk was
            trained on). Ignored by state-only policies. Frames are not augmented during fine-tuning (no
            random shift): the importance ratio must compare the policy on the very frames the behaviour
            policy saw, and a shifted frame would move it away from 1 even on fresh data.
        camera_encoder_lr_scale: the policy's camera encoders learn at ``policy_lr`` times this (with
            ``camera_encoder="finetune"``). 0.1 by default: the encoder was fitted by BC to every
            demonstrated frame, while the RL gradient through it is noisy (a few thousand of the policy's
            own frames, weighted by advantages), so it moves ten times slower than the trunk it feeds; 1.0
            trains it like the rest of the policy.
        critic_obs: what the critic reads. ``policy``: the policy's features, through its own copy of the
            policy's encoder (initialised from it). ``state``: every low-dim feature the simulator provides
            (the observation set ``state``: the privileged ``object`` pose included, no camera), through an
            MLP of the policy's trunk sizes, freshly initialised, its normalisation fitted on the first
            batch: an asymmetric actor-critic (Pinto et al. 2017), for camera policies in simulation. The
            critic is never deployed, so only training needs the privileged state; a robot run (no such
            state) refuses it. The batch keeps the critic's features beside the policy's; the checkpoint
            records the critic's features, so a resume and :func:`~gipo_robot.policies.load_critic`
            rebuild the same critic.
        gamma: discount per decision step.
        gae_lambda: GAE λ.
        advantage: ``gae`` (current critic, no correction for staleness) or ``vtrace``.
        critic_warmup_iters: iterations that update only the critic before the policy moves.
        bc_coef: weight of a BC NLL term toward the demonstrations in ``demo_store`` (0 = off).
        demo_store: path of the episode store of demonstrations the BC term uses (needed when ``bc_coef >
            0``); a path, so that ``config.json`` alone reproduces the run.
        log_std_floor: lower bound on the policy's log-std (normalised units) after every update; None = off.
        init_log_std: reset the (state-independent) log-std to this value before fine-tuning: the exploration
            noise of the rollouts (BC's own is too wide: its stochastic rollouts fail far more often than
            its mean); None keeps the pretrained one.
        grad_clip: maximum gradient norm (policy and critic).
        target_kl: stop an iteration's policy updates once approx-KL exceeds this; None = off.
        max_bad_updates: consecutive non-finite updates tolerated before the run stops with an error.
        eval_every: evaluate every this many iterations (and after the last).
        eval_episodes: episodes per evaluation.
        eval_workers: processes that play the evaluation episodes
            (:class:`~gipo_robot.loops.eval_pool.EvalPool`, the same per-seed results as one env); None: the
            rollout workers between two iterations (subprocess backend), else one process per core, at most
            ``eval_episodes``; 1: one env in the trainer's process.
        seed: seeds envs, sampling and minibatch order.
        learner_device: where the learner's policy, critic and optimisers live: ``cpu``, ``cuda`` or
            ``cuda:N``. Collection (rollouts, the lagged versions, asynchronous workers) and evaluation act
            with a CPU copy of the policy whose weights are synced from the learner once per iteration,
            after the update, so no env step waits on a device transfer; minibatches go to the device as
            they are drawn (the replay stays on the CPU); checkpoints hold CPU tensors and a resume loads
            them onto the device. ``cpu`` uses the one policy for both (no copy).
    """

    task: str = "Lift"
    objective: str = "gipo"
    objective_params: dict[str, Any] = field(default_factory=dict)
    ratio_level: str = "step"
    replay_size: int = 4
    env_steps: int = 20_000
    num_envs: int = 2
    steps_per_env: int = 1000
    backend: str = "subprocess"
    workers: int = 1
    ray_address: str | None = None
    async_collection: bool = False
    max_lag: int = 8
    policy_lag: int = 0
    max_worker_restarts: int = 3
    horizon: int | None = None
    epochs: int = 2
    minibatch_size: int = 256
    policy_lr: float = 3e-5
    critic_lr: float = 3e-4
    camera_encoder: str = "finetune"
    camera_encoder_lr_scale: float = 0.1
    critic_obs: str = "policy"
    gamma: float = 0.99
    gae_lambda: float = 0.95
    advantage: str = "gae"
    critic_warmup_iters: int = 1
    bc_coef: float = 0.0
    demo_store: str | None = None
    log_std_floor: float | None = -3.0
    init_log_std: float | None = -2.5
    grad_clip: float = 1.0
    target_kl: float | None = None
    max_bad_updates: int = 10
    eval_every: int = 2
    eval_episodes: int = 20
    eval_workers: int | None = None
    seed: int = 0
    learner_device: str = "cpu"

    def __post_init__(self) -> None:
        from gipo_robot.objectives import check_objective_params  # torch: imported when a config is made

        # KeyError naming the known objectives; ValueError naming a parameter the objective does not take
        self.objective_params = check_objective_params(self.objective, self.objective_params)
        if self.ratio_level not in ("chunk", "step", "dim"):
            raise ValueError(
                f"FinetuneConfig.ratio_level must be chunk, step or dim, got {self.ratio_level!r}"
            )
        if self.advantage not in ("gae", "vtrace"):
            raise ValueError(f"FinetuneConfig.advantage must be gae or vtrace, got {self.advantage!r}")
        for name in ("replay_size", "env_steps", "num_envs", "steps_per_env", "epochs", "minibatch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_workers is not None and (isinstance(self.eval_workers, bool) or self.eval_workers < 1):
            raise ValueError(f"FinetuneConfig.eval_workers must be >= 1 or None, got {self.eval_workers!r}")
        for name in ("eval_every", "eval_episodes", "max_bad_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.camera_encoder not in CAMERA_ENCODER_MODES:
            raise ValueError(
                f"FinetuneConfig.camera_encoder must be one of {', '.join(CAMERA_ENCODER_MODES)}, "
                f"got {self.camera_encoder!r}"
            )
        if self.critic_obs not in CRITIC_OBS:
            raise ValueError(
                f"FinetuneConfig.critic_obs must be one of {', '.join(CRITIC_OBS)}, got {self.critic_obs!r}"
            )
        if not (math.isfinite(self.camera_encoder_lr_scale) and self.camera_encoder_lr_scale > 0):
            raise ValueError(
                "FinetuneConfig.camera_encoder_lr_scale must be a positive number (camera_encoder='frozen' "
                f"keeps the encoder still), got {self.camera_encoder_lr_scale}"
            )
        if self.policy_lr <= 0 or self.critic_lr <= 0 or self.grad_clip <= 0:
            raise ValueError("FinetuneConfig.policy_lr, critic_lr and grad_clip must be positive")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("FinetuneConfig needs 0 < gamma <= 1 and 0 <= gae_lambda <= 1")
        if self.bc_coef < 0 or self.critic_warmup_iters < 0:
            raise ValueError("FinetuneConfig.bc_coef and critic_warmup_iters must be >= 0")
        if self.demo_store is not None:
            self.demo_store = str(self.demo_store)
        if self.bc_coef > 0 and not self.demo_store:
            raise ValueError(
                "FinetuneConfig.bc_coef > 0 needs demo_store (the demonstrations to regularise toward)"
            )
        floor, start = self.log_std_floor, self.init_log_std
        if floor is not None and start is not None and start < floor:
            raise ValueError(
                f"FinetuneConfig.init_log_std {start:g} is below log_std_floor {floor:g}: the first update "
                f"would lift the exploration noise to the floor; set log_std_floor <= {start:g} (or None)"
            )
        self._check_backend()
        self._check_learner_device()

    def _check_learner_device(self) -> None:
        """``learner_device`` is ``cpu``, ``cuda`` or ``cuda:N``, and a CUDA device exists on this machine."""
        device = self.learner_device
        if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise ValueError(f"FinetuneConfig.learner_device must be cpu, cuda or cuda:N, got {device!r}")
        if device == "cpu":
            return
        import torch  # imported when a config is made, as the objectives are

        if not torch.cuda.is_available():
            raise ValueError(
                f"FinetuneConfig.learner_device is {device!r}, but torch.cuda.is_available() is False on "
                f"this machine (torch {torch.__version__}, CUDA build {torch.version.cuda}); use 'cpu'"
            )
        index, count = int(device.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"FinetuneConfig.learner_device is {device!r}, but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )

    def _check_backend(self) -> None:
        from gipo_robot.sim.vector import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(
                f"FinetuneConfig.backend must be one of {', '.join(sorted(BACKENDS))}, got {self.backend!r}"
            )
        for name in ("max_lag", "max_worker_restarts", "policy_lag"):
            if getattr(self, name) < 0:
                raise ValueError(f"FinetuneConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.workers <= self.num_envs:
            raise ValueError(
                f"FinetuneConfig.workers must be between 1 and num_envs ({self.num_envs}), got {self.workers}"
            )
        if self.backend != "ray":
            for name, default in (("workers", 1), ("ray_address", None), ("async_collection", False)):
                if getattr(self, name) != default:
                    raise ValueError(
                        f"FinetuneConfig.{name} needs backend='ray' (got backend={self.backend!r})"
                    )
        if self.async_collection and self.policy_lag:
            raise ValueError(
                "FinetuneConfig.policy_lag sets the lag of lockstep collection; async_collection has its own "
                "(batch_lag, bounded by max_lag)"
            )
        if self.async_collection and self.num_envs % self.workers:
            raise ValueError(
                f"FinetuneConfig.num_envs ({self.num_envs}) must be a multiple of workers ({self.workers}) "
                "with async_collection (every worker's batch has the same shape)"
            )

    @property
    def batch_envs(self) -> int:
        """Envs in one iteration's batch: all N, or one worker's ``N / workers`` with async collection."""
        return self.num_envs // self.workers if self.async_collection else self.num_envs

    @property
    def iterations(self) -> int:
        """Iterations needed to collect ``env_steps``."""
        return math.ceil(self.env_steps / self.steps_per_iter)

    @property
    def steps_per_iter(self) -> int:
        """Env steps one iteration collects (``batch_envs × steps_per_env``)."""
        return self.batch_envs * self.steps_per_env

    @property
    def total_env_steps(self) -> int:
        """Env steps the run collects: ``env_steps`` rounded up to whole iterations."""
        return self.iterations * self.steps_per_iter

    @property
    def updates_per_iter(self) -> int:
        """Gradient steps per iteration (policy and critic each)."""
        return max(1, round(self.epochs * self.batch_envs * self.steps_per_env / self.minibatch_size))
