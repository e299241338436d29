"""SafetyGuard: every check is shown to bite by sending the same actions through the bare robot too.

``RecordingArm`` is a 3-joint servo arm in ``joint_position`` mode that records every command it receives
and tracks its targets exactly (or not at all, ``track=0``: a stuck arm). Its numbers, used by hand below:

    joints j0, j1, gripper; action range j0, j1: [-2, 2] rad, gripper: [0, 1]
    joint limits j0: [-1.5, 1.5], j1: [-1, 1], gripper: [0, 0.8]; max velocity 1, 1, 2 rad/s
    10 Hz, so T = 0.1 s; to_physical(a) = 2a for j0 and j1
"""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from gipo_robot.hardware.limits import clamp_into_box, clamp_step, clamp_to_limits, soft_start_scale
from gipo_robot.hardware.robot import Robot, RobotSpec
from gipo_robot.hardware.safety import INTERVENTION_KINDS, EStopError, SafetyConfig, SafetyGuard

# Every limit off unless a test turns it on.
OFF = {"max_step": 100.0, "velocity_margin": None, "soft_start_steps": 0, "watchdog_periods": None}


class RecordingArm(Robot):
    """A joint-position arm that records commands (normalised and physical) and holds."""

    def __init__(self, track: float = 1.0, control_hz: float = 10.0) -> None:
        self._spec = RobotSpec(
            name="recording-arm",
            action_mode="joint_position",
            action_names=("j0", "j1", "gripper"),
            action_low=[-2.0, -2.0, 0.0],
            action_high=[2.0, 2.0, 1.0],
            joint_names=("j0", "j1", "gripper"),
            joint_low=[-1.5, -1.0, 0.0],
            joint_high=[1.5, 1.0, 0.8],
            max_joint_velocity=[1.0, 1.0, 2.0],
            control_hz=control_hz,
            obs_shapes={"joint_pos": (3,), "joint_vel": (3,)},
            obs_dtypes={"joint_pos": "float32", "joint_vel": "float32"},
        )
        self.track = track
        self.q = np.zeros(3)
        self.received: list[np.ndarray] = []
        self.holds = 0

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def reset(self, *, seed=None):
        self.q = np.array([0.0, 0.0, 0.4])
        return self.observe()

    def observe(self):
        return {"joint_pos": self.q.astype(np.float32), "joint_vel": np.zeros(3, np.float32)}

    def act(self, action):
        action = np.asarray(action, dtype=np.float64)
        self.received.append(action.copy())
        target = self.spec.to_physical(np.clip(action, -1, 1))
        self.q = self.q + self.track * (target - self.q)
        return np.clip(action, -1, 1)

    def hold(self):
        self.holds += 1

    @property
    def physical(self) -> np.ndarray:
        """(N, 3) physical targets received."""
        return self.spec.to_physical(np.array(self.received))


def drive(robot: Robot, actions) -> None:
    robot.reset()
    for a in actions:
        robot.act(np.asarray(a, dtype=np.float64))


def guarded(arm: Robot, **config) -> SafetyGuard:
    guard = SafetyGuard(arm, SafetyConfig(**{**OFF, **config}))
    guard.connect()
    return guard


# ---------------------------------------------------------------------------------------------- pure limits


def test_pure_limits_by_hand():
    # target 1.0 from 0.2 with max step 0.3 -> 0.5; -1.0 from 0.2 -> -0.1; an unknown (NaN) reference
    # leaves the target alone.
    out = clamp_step(np.array([1.0, -1.0, 5.0]), np.array([0.2, 0.2, np.nan]), np.array([0.3, 0.3, 0.3]))
    np.testing.assert_allclose(out, [0.5, -0.1, 5.0])
    np.testing.assert_allclose(
        clamp_to_limits(np.array([2.0, -2.0]), np.array([-1.5, -1]), np.array([1.5, 1])), [1.5, -1]
    )
    # Box [0, 1]^3, at (0.9, 0.5, 1.2) (z already above the top):
    #   dx 0.3 -> 0.9 + 0.3 = 1.2 is out -> dx = 0.1; dy -0.2 stays; dz +0.1 goes further out -> 0;
    #   but dz -0.1 (back towards the box) is allowed.
    low, high = np.zeros(3), np.ones(3)
    pos = np.array([0.9, 0.5, 1.2])
    np.testing.assert_allclose(clamp_into_box(pos, np.array([0.3, -0.2, 0.1]), low, high), [0.1, -0.2, 0.0])
    np.testing.assert_allclose(clamp_into_box(pos, np.array([0.0, 0.0, -0.1]), low, high), [0.0, 0.0, -0.1])
    # Ramp over 4 steps from 0.25: 0.25, 0.4375, 0.625, 0.8125, then 1.
    assert [soft_start_scale(k, 4, 0.25) for k in range(6)] == [0.25, 0.4375, 0.625, 0.8125, 1.0, 1.0]
    assert soft_start_scale(0, 0, 0.1) == 1.0


# ---------------------------------------------------------------------------------------------- each check


def test_nan_is_rejected_and_the_arm_holds():
    actions = [[0.1, 0.0, 0.4], [np.nan, 0.0, 0.4], [0.1, np.inf, 0.4]]
    bare = RecordingArm()
    drive(bare, actions)
    assert not np.all(np.isfinite(bare.received))  # the bare arm was sent NaN and inf

    arm = RecordingArm()
    guard = guarded(arm)
    guard.reset()
    first = guard.act(np.array(actions[0]))
    held = guard.act(np.array(actions[1]))
    guard.act(np.array(actions[2]))
    assert len(arm.received) == 1 and np.all(np.isfinite(arm.received))  # only the finite action went out
    assert arm.holds == 2
    np.testing.assert_array_equal(held, first)  # holding = the previous target
    assert guard.interventions["nan"] == 2


def test_repeated_nan_triggers_an_estop():
    arm = RecordingArm()
    guard = guarded(arm, nan_estop_after=3)
    guard.reset()
    for _ in range(2):
        guard.act(np.full(3, np.nan))
    assert not guard.estopped
    with pytest.raises(EStopError, match="3 non-finite actions in a row"):
        guard.act(np.full(3, np.nan))  # the third in a row e-stops, and this very call reports it
    assert guard.estopped and guard.interventions["estop"] == 1
    with pytest.raises(EStopError, match="non-finite"):
        guard.act(np.zeros(3))


def test_joint_limits_clamp_targets():
    # a = 1 on j0 means 2.0 rad, beyond j0's upper limit 1.5; a = -1 on j1 means -2.0 rad, below -1.
    action = [1.0, -1.0, 0.9]  # gripper: 0.5 + 0.9 * 0.5 = 0.95 > 0.8
    bare = RecordingArm()
    drive(bare, [action])
    np.testing.assert_allclose(bare.physical[0], [2.0, -2.0, 0.95])  # violates all three limits

    arm = RecordingArm()
    guard = guarded(arm)
    guard.reset()
    sent = guard.act(np.array(action))
    np.testing.assert_allclose(arm.physical[0], [1.5, -1.0, 0.8])
    # Normalised: j0 1.5 rad -> 0.75; j1 -1 -> -0.5; gripper 0.8 -> 2 * 0.8 - 1 = 0.6.
    np.testing.assert_allclose(sent, [0.75, -0.5, 0.6])
    assert guard.interventions["joint_limit"] == 1


def test_joint_limit_margin_keeps_targets_inside():
    arm = RecordingArm()
    guard = guarded(arm, joint_limit_margin=0.1)
    guard.reset()
    guard.act(np.array([1.0, -1.0, 0.9]))
    np.testing.assert_allclose(arm.physical[0], [1.4, -0.9, 0.7])


def test_delta_limits_the_target_jump_per_step():
    # From q = 0 (reset), a target of 1.0 rad on j0 (a = 0.5) with max_step 0.2: 0.2, then 0.4 (the arm
    # tracked to 0.2), then 0.6. The gripper asks for 0.4 -> stays (it starts at 0.4).
    actions = [[0.5, 0.0, -0.2]] * 3
    bare = RecordingArm()
    drive(bare, actions)
    assert np.abs(np.diff(bare.physical[:, 0], prepend=0.0)).max() == pytest.approx(1.0)  # a 1 rad jump

    arm = RecordingArm()
    guard = guarded(arm, max_step=0.2)
    drive(guard, actions)
    np.testing.assert_allclose(arm.physical[:, 0], [0.2, 0.4, 0.6])
    np.testing.assert_allclose(arm.physical[:, 2], [0.4, 0.4, 0.4])
    assert guard.interventions["delta"] == 3


def test_default_max_step_is_one_period_of_max_velocity():
    # Default max_step = max_joint_velocity * T = 1 rad/s * 0.1 s = 0.1 rad for j0.
    arm = RecordingArm()
    guard = guarded(arm, max_step=None)
    drive(guard, [[0.5, 0.0, -0.2]])
    assert arm.physical[0, 0] == pytest.approx(0.1)


def test_the_per_step_limits_follow_the_loop_period_not_the_robot_rate():
    # Issue 28 item 9: a leader moving at 0.9 rad/s recorded at 2 Hz on this 10 Hz arm (1 rad/s limit on
    # j0) asks for 0.45 rad per step. The per-step limits of the robot's rate (0.1 rad) clamped every step,
    # capping the follower at a fifth of its velocity limit; at the loop's period (0.5 s) they allow 0.5 rad.
    ramp = [[0.45 * k / 2.0, 0.0, -0.2] for k in range(1, 4)]  # a = q / 2 on j0 (range +-2 rad)
    robot_rate = RecordingArm()
    drive(guarded(robot_rate, max_step=None, velocity_margin=1.0), ramp)
    np.testing.assert_allclose(robot_rate.physical[:, 0], [0.1, 0.2, 0.3])  # 0.2 rad/s at 2 Hz
    arm = RecordingArm()
    guard = SafetyGuard(arm, SafetyConfig(**{**OFF, "max_step": None, "velocity_margin": 1.0}), period=0.5)
    guard.connect()
    drive(guard, ramp)
    np.testing.assert_allclose(arm.physical[:, 0], [0.45, 0.9, 1.35])
    assert guard.interventions["delta"] == guard.interventions["velocity"] == 0
    # ... and still hold the velocity limit in rad/s: a 1.2 rad jump is cut to 1 rad/s * 0.5 s.
    drive(guard, [[0.6, 0.0, -0.2]])
    assert arm.physical[-1, 0] == pytest.approx(0.5) and guard.interventions["delta"] == 1
    with pytest.raises(ValueError, match="control period must be > 0 s"):
        guard.set_period(0.0)


def test_velocity_limits_the_target_relative_to_the_measured_position():
    # A stuck arm (track = 0: it never moves from q = 0). The delta check alone lets the target walk away
    # from it (0.2, 0.4, 0.6: each step only 0.2 from the previous target); the velocity check keeps it
    # within 1 rad/s * 0.5 * 0.1 s = 0.05 rad of where the arm really is.
    actions = [[0.5, 0.0, -0.2]] * 3
    delta_only = RecordingArm(track=0.0)
    drive(guarded(delta_only, max_step=0.2), actions)
    np.testing.assert_allclose(delta_only.physical[:, 0], [0.2, 0.4, 0.6])

    arm = RecordingArm(track=0.0)
    guard = guarded(arm, max_step=0.2, velocity_margin=0.5)
    drive(guard, actions)
    np.testing.assert_allclose(arm.physical[:, 0], [0.05, 0.05, 0.05])
    assert guard.interventions["velocity"] == 3


def test_soft_start_ramps_the_step_limit_after_connect():
    # max_step 0.2 over a 4-step ramp from 0.25: limits 0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2 (see
    # test_pure_limits_by_hand); the arm tracks, so positions accumulate: 0.05, 0.1375, 0.2625, 0.425, 0.625.
    arm = RecordingArm()
    guard = guarded(arm, max_step=0.2, soft_start_steps=4, soft_start_fraction=0.25)
    drive(guard, [[0.5, 0.0, -0.2]] * 6)
    np.testing.assert_allclose(arm.physical[:, 0], [0.05, 0.1375, 0.2625, 0.425, 0.625, 0.825])
    # Without the ramp the first step already moves the full 0.2.
    flat = RecordingArm()
    drive(guarded(flat, max_step=0.2), [[0.5, 0.0, -0.2]])
    assert flat.physical[0, 0] == pytest.approx(0.2)


def test_act_returns_the_command_actually_sent_and_passes_safe_actions_untouched():
    arm = RecordingArm()
    guard = guarded(arm, max_step=0.2)
    guard.reset()
    safe = np.array([0.05, -0.03, -0.2])  # 0.1 rad, -0.06 rad, gripper 0.4: all within every limit
    sent = guard.act(safe)
    np.testing.assert_array_equal(sent, safe)
    np.testing.assert_array_equal(arm.received[-1], safe)
    assert sum(guard.interventions.values()) == 0


def test_watchdog_holds_when_actions_stop():
    # Watchdog after 2 periods = 0.2 s. After one act the loop goes silent: the guard must hold once.
    bare = RecordingArm()
    drive(bare, [[0.0, 0.0, -0.2]])
    time.sleep(0.5)
    assert bare.holds == 0  # nothing watches the bare arm

    arm = RecordingArm()
    guard = guarded(arm, watchdog_periods=2.0)
    try:
        drive(guard, [[0.0, 0.0, -0.2]])
        deadline = time.monotonic() + 5.0
        while arm.holds == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert arm.holds == 1
        time.sleep(0.5)
        assert arm.holds == 1  # once per lapse, not every tick
        assert guard.interventions["watchdog"] == 1
        guard.act(np.array([0.0, 0.0, -0.2]))  # a new action re-arms it
        deadline = time.monotonic() + 5.0
        while guard.interventions["watchdog"] == 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert guard.interventions["watchdog"] == 2 and arm.holds == 2
    finally:
        guard.disconnect()


def test_watchdog_stays_quiet_while_actions_keep_coming():
    # 1 s watchdog (10 periods), actions every 20 ms for 0.5 s.
    arm = RecordingArm()
    guard = guarded(arm, watchdog_periods=10.0)
    try:
        guard.reset()
        for _ in range(25):
            guard.act(np.array([0.0, 0.0, -0.2]))
            time.sleep(0.02)
        assert guard.interventions["watchdog"] == 0 and arm.holds == 0
    finally:
        guard.disconnect()


def test_estop_holds_and_refuses_motion_until_cleared():
    arm = RecordingArm()
    guard = guarded(arm)
    guard.reset()
    guard.act(np.zeros(3))
    operator = threading.Thread(target=guard.estop, args=("operator",))  # from another thread
    operator.start()
    operator.join(timeout=5)
    assert guard.estopped and guard.estop_reason == "operator" and arm.holds >= 1
    n = len(arm.received)
    with pytest.raises(EStopError, match="operator"):
        guard.act(np.zeros(3))
    with pytest.raises(EStopError):
        guard.reset()
    assert len(arm.received) == n  # nothing was sent while e-stopped
    assert guard.interventions["estop"] == 1
    guard.hold()  # never raises
    guard.clear_estop()
    guard.act(np.zeros(3))
    assert len(arm.received) == n + 1


def test_sigint_estops_inside_the_context_and_the_old_handler_comes_back():
    # Python's own Ctrl-C handler as the previous one: a shell that starts background jobs with SIGINT
    # ignored (``cmd &`` without job control) would otherwise leave SIG_IGN there.
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        arm = RecordingArm()
        guard = guarded(arm)
        guard.reset()
        with guard.estop_on_sigint():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs in the main thread between bytecodes
            assert guard.estopped and "SIGINT" in guard.estop_reason
            with pytest.raises(EStopError):
                guard.act(np.zeros(3))
            with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C goes to the previous handler
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


def test_counts_reset_with_each_episode_and_report_is_json():
    arm = RecordingArm()
    guard = guarded(arm, max_step=0.2)
    drive(guard, [[0.5, 0.0, -0.2]])
    report = guard.intervention_report()
    assert json.loads(json.dumps(report)) == report
    assert report["interventions"]["delta"] == 1 and report["actions"] == 1
    assert set(report["interventions"]) == set(INTERVENTION_KINDS)
    guard.reset()
    assert sum(guard.interventions.values()) == 0


# ---------------------------------------------------------------------------------------------- config


def test_config_round_trips_through_json_and_names_bad_fields():
    config = SafetyConfig(max_step=[0.1, 0.2, 0.3], workspace_low=[0, 0, 0], workspace_high=[1, 1, 1])
    assert SafetyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for bad, field in (
        ({"max_step": -1.0}, "max_step"),
        ({"velocity_margin": 1.5}, "velocity_margin"),
        ({"watchdog_periods": 0}, "watchdog_periods"),
        ({"soft_start_fraction": 0.0}, "soft_start_fraction"),
        ({"workspace_low": [0, 0, 0]}, "workspace_low"),
        ({"nan_estop_after": 0}, "nan_estop_after"),
    ):
        with pytest.raises(ValueError, match=field):
            SafetyConfig(**bad)
    with pytest.raises(ValueError, match=r"unknown safety keys \['max_stp'\]"):
        SafetyConfig.from_dict({"max_stp": 1.0}, source="safety.json")
    with pytest.raises(ValueError, match="2 values for 3 action dims"):
        SafetyGuard(RecordingArm(), SafetyConfig(max_step=[0.1, 0.2]))
    with pytest.raises(ValueError, match="joint_feature 'nope'"):
        SafetyGuard(RecordingArm(), SafetyConfig(joint_feature="nope"))
