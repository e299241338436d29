"""The settings of a fine-tuning run on a robot (``gipo-robot finetune --robot``), saved as ``config.json``.

:class:`ArmConfig` extends :class:`~gipo_robot.train.config.FinetuneConfig`: the learner's fields
(objective and its parameters, ratio level, learning rates, ``epochs`` as the update-to-data ratio,
minibatch size, ``max_lag``, ...) mean the same on both paths; the vector-env fields (``num_envs``,
``steps_per_env``, ``backend``, ``workers``, ...) do not apply and must keep their defaults. Like the parent
it imports neither torch nor the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from gipo_robot.train.config import FinetuneConfig

__all__ = ["RESETS", "REWARDS", "ArmConfig"]

#: ``--reward`` kinds (``classifier:PATH`` names a classifier directory).
REWARDS = ("sim", "operator", "classifier")
#: ``--reset`` kinds.
RESETS = ("auto", "home", "operator")
_VECTOR_ONLY = ("num_envs", "steps_per_env", "backend", "workers", "ray_address", "async_collection",
                "max_worker_restarts", "policy_lag")  # fmt: skip


@dataclass
class ArmConfig(FinetuneConfig):
    """A fine-tuning run on a :class:`~gipo_robot.hardware.robot.Robot` (see :mod:`gipo_robot.train.arm`).

    Inherited fields keep their meaning (``policy_lr`` 1e-5, ``epochs`` 8 and ``max_lag`` 16 by default
    here), except: ``env_steps`` is the budget in robot control steps,
    ``task`` is only the name recorded with each episode, ``max_lag`` bounds the lag of what the learner
    trains on (see ``stale``), ``replay_size`` is unused (the buffer is every episode within ``max_lag``
    versions, at most ``replay_episodes``), and ``bc_coef`` applies to ``demo_store``'s demonstrations and
    operator interventions alike (``intervention_bc_coef`` sets it once interventions exist while it is 0).
    ``critic_obs`` must stay ``policy``: an arm has no privileged state for a ``state`` critic to read.

    Attributes:
        robot: what ``deploy --robot`` accepts: ``sim:Lift``, a serial or ROS robot config file.
        reward: ``sim`` (the simulator's task status), ``operator`` (a key after each episode) or
            ``classifier:PATH`` (a success classifier from ``gipo-robot train-reward``).
        max_false_positive: refuse a classifier whose held-out false-positive rate is above this.
        episodes: stop after this many committed episodes (None: only ``env_steps`` and ``robot_minutes``).
        robot_minutes: stop after this much wall-clock time of the actor (None: no limit).
        max_steps: control steps per episode at most (None: until the robot says the episode is done, which
            only a simulator can).
        mode: ``async`` (the robot keeps acting while the learner trains) or ``sync`` (after each episode the
            actor waits for the learner's next version: the baseline).
        swap: when the actor loads a newer version: between ``episode``\\ s, or between ``chunk``\\ s.
        stale: samples more than ``max_lag`` versions old are ``drop``\\ ped, or ``keep``\\ t and left to the
            objective's trust weight (up to ``replay_episodes``).
        replay_episodes: episodes the learner keeps at most (oldest dropped first).
        min_new_steps: the learner starts an update round once this many new steps have landed (in sync
            mode, after every episode).
        intervention_bc_coef: the BC weight once interventions exist and ``bc_coef`` is 0.
        reset: between episodes ``auto`` (the robot's own reset: a new sim scene, a real arm's home pose),
            ``home`` (the same, and say so) or ``operator`` (hold, wait for a key up to ``reset_timeout_s``).
        reset_timeout_s: the operator's reset window, s; a reset never blocks longer.
        realtime: pace the actor at the robot's control rate (False: sim only, as fast as it steps).
        from_stores: logged episode stores to start from (critic pretraining, stale replay, BC).
        critic_pretrain_steps: gradient steps of critic pretraining on ``from_stores``.
        learner_timeout_s: the actor calls the learner gone after this long without a heartbeat.

    Attempt ``i`` of a simulated robot resets with seed ``seed * 100_003 + i`` (the vector path's scheme).
    """

    # Learner settings that differ from the vector path's, as benchmarked (BENCHMARKS.md *robot_finetune*):
    # the robot's time is what is scarce, so the learner makes 4x the vector path's updates per step.
    policy_lr: float = 1e-5
    epochs: int = 8
    max_lag: int = 16
    robot: str = "sim:Lift"
    reward: str = "sim"
    max_false_positive: float = 0.05
    episodes: int | None = None
    robot_minutes: float | None = None
    max_steps: int | None = None
    mode: str = "async"
    swap: str = "episode"
    stale: str = "drop"
    replay_episodes: int = 200
    min_new_steps: int = 100
    intervention_bc_coef: float = 0.1
    reset: str = "auto"
    reset_timeout_s: float = 30.0
    realtime: bool = True
    from_stores: list[str] = field(default_factory=list)
    critic_pretrain_steps: int = 500
    learner_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        defaults = FinetuneConfig()
        for name in _VECTOR_ONLY:
            if getattr(self, name) != getattr(defaults, name):
                raise ValueError(f"ArmConfig.{name} is a vector-env setting; a robot run takes no {name}")
        if self.critic_obs != "policy":
            raise ValueError(
                f"ArmConfig.critic_obs={self.critic_obs!r}: a robot run has no privileged state (a real arm "
                "observes no object pose), so its critic reads the policy's features (critic_obs='policy')"
            )
        kind = self.reward.split(":", 1)[0]
        if kind not in REWARDS or (kind == "classifier") != (":" in self.reward):
            raise ValueError(
                f"ArmConfig.reward must be sim, operator or classifier:PATH, got {self.reward!r}"
            )
        for name, allowed in (("mode", ("async", "sync")), ("swap", ("episode", "chunk")),
                              ("stale", ("drop", "keep")), ("reset", RESETS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"ArmConfig.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        for name in ("episodes", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"ArmConfig.{name} must be >= 1 or None, got {value}")
        for name in ("replay_episodes", "min_new_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"ArmConfig.{name} must be >= 1, got {getattr(self, name)}")
        positive = ("reset_timeout_s", "learner_timeout_s")
        if self.robot_minutes is not None:
            positive += ("robot_minutes",)
        for name in positive:
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"ArmConfig.{name} must be a positive number, got {getattr(self, name)}")
        if not 0 <= self.max_false_positive <= 1:
            raise ValueError(f"ArmConfig.max_false_positive must be in [0, 1], got {self.max_false_positive}")
        if self.intervention_bc_coef < 0 or self.critic_pretrain_steps < 0:
            raise ValueError("ArmConfig.intervention_bc_coef and critic_pretrain_steps must be >= 0")
        self.from_stores = [str(p) for p in self.from_stores]

    @property
    def classifier_path(self) -> str | None:
        """The classifier directory of ``reward="classifier:PATH"``, else None."""
        return self.reward.split(":", 1)[1] if self.reward.startswith("classifier:") else None

    def updates_for(self, new_steps: int) -> int:
        """Gradient steps of one update round over ``new_steps`` fresh steps (``epochs`` passes' worth)."""
        return max(1, round(self.epochs * new_steps / self.minibatch_size))


#: The fields only a robot run has (the CLI offers them as flags next to FinetuneConfig's).
ARM_FIELDS = tuple(
    f.name for f in fields(ArmConfig) if f.name not in {g.name for g in fields(FinetuneConfig)}
)
