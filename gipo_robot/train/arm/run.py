"""``gipo-robot finetune --robot``: one run directory, the learner in a child process, the actor here.

:func:`finetune_on_robot` sets the run up (or resumes it), starts the learner
(:mod:`~gipo_robot.train.arm.learner_loop`) as a child process with its output in ``RUN/learner.log``, runs
the actor (:mod:`~gipo_robot.train.arm.actor_loop`) in this process (it owns the robot and the terminal),
and restarts the learner with its checkpoint if it dies (up to ``MAX_LEARNER_RESTARTS`` times; the actor
never stops for it). When the actor is done the learner makes its last round and exits; the learning curve
is drawn and the run summarised.

With ``learner="external"`` no learner is started here: run ``gipo-robot learner RUN`` yourself, e.g. on a
machine with a GPU that sees the same run directory.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from gipo_robot.configs import load_config, save_config
from gipo_robot.datasets.schema import sampled_step_schema
from gipo_robot.hardware.config import load_robot
from gipo_robot.loops.actor import check_policy_fits
from gipo_robot.policies.checkpoint import load_policy
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.arm.actor_loop import ArmActor
from gipo_robot.train.arm.channel import RunChannel
from gipo_robot.train.arm.config import ArmConfig
from gipo_robot.train.arm.report import plot_run, summary
from gipo_robot.train.learner import FinetuneError, check_demo_store

__all__ = ["finetune_on_robot", "start_learner"]

MAX_LEARNER_RESTARTS = 3
BUDGET_FIELDS = ("episodes", "env_steps", "robot_minutes")
"""The fields a resumed run may change: how much more to run."""
FINAL_ROUND_TIMEOUT_S = 600.0
"""How long the run waits, after the actor's last episode, for the learner's last round."""


def start_learner(run: Path, *, parent: bool = True) -> subprocess.Popen:
    """The learner of ``run`` as a child process (it stops when this process is gone, if ``parent``)."""
    args = [sys.executable, "-m", "gipo_robot.train.arm.learner_loop", str(run)]
    if parent:
        args += ["--parent", str(os.getpid())]
    log = (run / "learner.log").open("a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


class _Supervisor:
    """Keeps the learner child running while the actor acts."""

    def __init__(self, run: Path, enabled: bool, say: Any, timeout_s: float) -> None:
        self.run, self.enabled, self.say = run, enabled, say
        self.proc: subprocess.Popen | None = start_learner(run) if enabled else None
        self.restarts = 0
        self._wait_until_up(timeout_s)

    def _wait_until_up(self, timeout_s: float) -> None:
        """Before the robot moves: wait (at most ``timeout_s``) for the new learner's first heartbeat, so the
        first episodes are not collected before anyone can learn from them."""
        if self.proc is None:
            return
        deadline = time.monotonic() + timeout_s
        channel = RunChannel(self.run)
        while time.monotonic() < deadline and self.proc.poll() is None:
            if channel.heartbeat("learner").get("pid") == self.proc.pid:
                return
            time.sleep(0.05)
        self.say(f"the learner is not up after {timeout_s:.0f} s (see learner.log); acting anyway")

    def check(self) -> None:
        """After each episode: a learner that died is started again from its checkpoint."""
        if self.proc is None or self.proc.poll() is None:
            return
        code = self.proc.returncode
        state = RunChannel(self.run).heartbeat("learner").get("state")
        if state == "failed" or self.restarts >= MAX_LEARNER_RESTARTS:
            if self.restarts >= MAX_LEARNER_RESTARTS:
                self.say(f"learner exited (code {code}) {self.restarts} times; acting on without it")
            self.proc = None
            return
        self.restarts += 1
        self.say(f"learner exited (code {code}); restarting it from its checkpoint (see learner.log)")
        self.proc = start_learner(self.run)

    def finish(self) -> int | None:
        """Wait for the learner's last round; its exit code (None if it was not running)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=FINAL_ROUND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            return self.proc.wait()


def finetune_on_robot(
    config: ArmConfig,
    policy_path: str | Path | None,
    out: str | Path,
    *,
    resume: bool = False,
    operator: Any = None,
    device: Any = None,
    learner: str = "local",
    status_out: IO[str] | None = None,
    status: bool = True,
) -> dict[str, Any]:
    """Fine-tune the policy at ``policy_path`` on ``config.robot``; the run goes to ``out``.

    Args:
        config: the run's settings.
        policy_path: the starting policy (None when resuming).
        out: the run directory (see :mod:`~gipo_robot.train.arm.channel`).
        resume: continue the run in ``out`` (same config; the learner from its checkpoint, the actor from
            the committed episodes).
        operator: labels and resets (:mod:`~gipo_robot.train.arm.operator`); needed by ``reward="operator"``
            and ``reset="operator"``.
        device: a teleop device for takeovers, or None.
        learner: ``local`` (a child process) or ``external`` (``gipo-robot learner RUN`` runs elsewhere).
        status_out: where the actor's status line goes.
        status: show it.

    Returns:
        The run's summary: this session's actor numbers, the run's episodes and success, files.

    Raises:
        FinetuneError: a resume that does not fit, a LeRobot policy that reads cameras, a demo_store
            whose frames do not fit the policy, or a learner that failed.
        ValueError: the policy does not fit the robot, or a setting does not fit the robot or the reward.
        ClassifierRefused: the classifier's held-out false-positive rate is above the limit.
    """
    out = Path(out)
    channel = RunChannel(out)
    if (config.reward == "operator" or config.reset == "operator") and operator is None:
        raise ValueError(f"reward={config.reward!r}, reset={config.reset!r} need an operator")
    classifier = _classifier(config)
    robot = load_robot(config.robot)
    try:
        _prepare(config, policy_path, out, channel, robot, resume=resume, classifier=classifier)
        store = _open_store(channel, robot.spec)
        say = (lambda m: print(m, file=status_out or sys.stderr)) if status else (lambda m: None)
        actor = ArmActor(config, channel, robot, operator=operator, device=device, classifier=classifier,
                         status_out=status_out, status=status)  # fmt: skip
        actor.beat(finished=False)  # before the learner starts: a resumed run's last beat said "finished"
        supervisor = _Supervisor(out, learner == "local", say, config.learner_timeout_s)
        actor.on_episode = supervisor.check
        session = actor.run(store)
        code = supervisor.finish()
    finally:
        robot.close()
    if code not in (None, 0):
        beat = channel.heartbeat("learner")
        raise FinetuneError(
            f"the learner failed (exit {code}): {beat.get('error') or 'see ' + str(out / 'learner.log')}"
        )
    png = plot_run(out)
    return {"run": str(out), "session": session, **summary(out),
            "learner": channel.heartbeat("learner"),
            "files": {"store": str(channel.store_path), "metrics": str(out / "metrics.csv"), "png": str(png),
                      "config": str(out / "config.json")}}  # fmt: skip


def _classifier(config: ArmConfig) -> Any:
    if config.classifier_path is None:
        return None
    from gipo_robot.reward import load_classifier

    return load_classifier(config.classifier_path, max_false_positive=config.max_false_positive)


def _prepare(
    config: ArmConfig, policy_path: Any, out: Path, channel: RunChannel, robot: Any, *, resume: bool,
    classifier: Any,
) -> None:  # fmt: skip
    """Check everything before the robot moves; save the config and publish version 0 of a new run."""
    if classifier is not None:
        classifier.check_fits(robot.spec)
    if resume:
        if not (out / "config.json").exists():
            raise FinetuneError(f"{out}: nothing to resume (no config.json)")
        saved = load_config(ArmConfig, out / "config.json")
        budget = {name: getattr(config, name) for name in BUDGET_FIELDS}
        if dataclasses.replace(saved, **budget) != config:
            raise FinetuneError(
                f"{out / 'config.json'} differs from the given config beyond the budget "
                f"({', '.join(BUDGET_FIELDS)}); resume needs the same one"
            )
        save_config(config, out / "config.json")  # a resumed run may get a larger budget
        check_policy_fits(load_policy(channel.latest()[1]).config, robot.spec, where=f"run {out}")
        return
    if (out / "config.json").exists():
        raise FinetuneError(f"{out} already holds a run: --resume it, or choose another --out")
    if policy_path is None:
        raise ValueError("a new run needs --policy")
    policy = load_policy(policy_path)
    if policy.config.images and not isinstance(policy, GaussianPolicy):
        raise FinetuneError(
            f"policy at {policy_path} is a {type(policy).__name__} that reads cameras; robot fine-tuning "
            "takes gipo-robot's own camera policies and LeRobot policies that read only low-dim features"
        )
    check_policy_fits(policy.config, robot.spec, where=f"policy at {policy_path}")
    check_demo_store(config, policy)  # from its schema: the learner loads the demonstrations
    out.mkdir(parents=True, exist_ok=True)
    if config.init_log_std is not None:
        policy.set_log_std(config.init_log_std)
    save_config(config, out / "config.json")
    channel.publish(policy, 0, {"base_policy": str(policy_path)})


def _open_store(channel: RunChannel, spec: Any) -> Any:
    from gipo_robot.datasets import EpisodeStore

    if channel.store_path.exists():
        return EpisodeStore.open(channel.store_path, "a")
    return EpisodeStore.create(
        channel.store_path, sampled_step_schema(spec), fps=spec.control_hz, robot=spec.to_dict()
    )
