"""A lean replacement for robosuite's control-step loop with the same physics and controller arithmetic.

Why. robosuite runs its controller and updates every observable on each of the 25 physics substeps of a
control step (500 Hz physics, 20 Hz policy). Profiling Lift with a Panda (200 steps, cProfile): of
329 us per substep, ``mj_step1`` + ``mj_step2`` take 47 us; the rest is Python: the robot's ``control()``
with its per-call action-limit assertions (which rebuild the action limits three times per substep),
the composite controller's bookkeeping, name lookups and fresh Jacobian buffers in the OSC ``update()``,
and 13 observables each checking its sampling clock.

What this keeps exactly. On the first substep of a control step we call robosuite's own
``env._pre_action(action, policy_step=True)``: goal setting, gripper command and the robot's history
buffers are robosuite's code. On the other substeps only the OSC torque law runs again (the gripper's
command is constant within a step and already sits in ``data.ctrl``): one compiled call,
:func:`_osc_kernel`, computes the same quantities with the same operations in the same order as
``OperationalSpaceController.run_controller``, so ``data.ctrl`` gets the same bits. Two things make
that hold: numba's elementwise float arithmetic is IEEE-identical to numpy's, and its matrix products
call BLAS with the same operand layouts numpy uses (robosuite's numba helpers are compiled per memory
layout, and a C-ordered mass matrix where robosuite passes an F-ordered one changes the last bit).
Moving the substep from Python into the kernel made a Lift step 1.45x faster. Observables are sampled on the same substep robosuite samples them
(one shared sampling clock, the same float arithmetic as ``Observable.update``), in the same order, so
cached inter-observable values match. ``env._post_action`` computes reward and bookkeeping as usual.

Where it does not apply (a non-OSC arm controller, interpolators, several robots, observables with
delays or their own sampling rates), :meth:`FastStepper.create` returns None and the env uses
robosuite's ``step``. tests/sim/test_fast_step.py replays seeds and action sequences through both loops
and requires identical trajectories.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numba
import numpy as np
from robosuite.utils.control_utils import nullspace_torques, opspace_matrices, orientation_error


def _supported(rs_env: Any) -> str | None:
    """Why the fast path cannot drive ``rs_env``, or None if it can."""
    from robosuite.controllers.parts.arm.osc import OperationalSpaceController
    from robosuite.controllers.parts.gripper.simple_grip import SimpleGripController

    if not isinstance(opspace_matrices, numba.core.dispatcher.Dispatcher):
        return "robosuite's numba helpers are disabled (robosuite.macros.ENABLE_NUMBA)"
    if len(rs_env.robots) != 1:
        return "more than one robot"
    if not rs_env.lite_physics:
        return "lite_physics=False"
    robot = rs_env.robots[0]
    arms = [p for p in robot.composite_controller.part_controllers if p in robot.arms]
    if arms != ["right"]:
        return "not a single right arm"
    for name, controller in robot.composite_controller.part_controllers.items():
        if name == "right":
            if type(controller) is not OperationalSpaceController:
                return f"arm controller {type(controller).__name__}"
            if (
                controller.impedance_mode != "fixed"
                or controller.interpolator_pos is not None
                or controller.interpolator_ori is not None
                or controller.input_ref_frame != "base"
                or not controller.uncoupling
                or controller.num_ref_sites != 1
            ):
                return "OSC options other than robosuite's defaults"
        elif type(controller) is not SimpleGripController or controller.interpolator is not None:
            return f"part {name} uses {type(controller).__name__}"
    return None


class FastStepper:
    """Steps one robosuite env for one control step; see the module docstring.

    Build with :meth:`create`; call :meth:`reset` after every ``env.reset()`` and :meth:`step` instead of
    ``env.step`` (which it replaces except for observation assembly: read the observables afterwards).
    """

    def __init__(self, rs_env: Any) -> None:
        from robosuite.utils.observables import NO_DELAY

        self._env = rs_env
        self._no_delay = NO_DELAY
        robot = rs_env.robots[0]
        osc = robot.composite_controller.part_controllers["right"]
        sim = rs_env.sim
        self._model = sim.model._model
        self._data = sim.data._data
        nv = self._model.nv
        self._nv = nv
        self._ref_site = sim.model.site_name2id(osc.ref_name)
        self._center_site = sim.model.site_name2id(f"{osc.naming_prefix}{osc.part_name}_center")
        self._qpos_index = np.asarray(osc.qpos_index, dtype=np.int64)
        self._qvel_index = np.asarray(osc.qvel_index, dtype=np.int64)
        actuators = robot._ref_actuators_indexes_dict["right"]
        self._actuators = np.asarray(actuators, dtype=np.int64)
        self._ctrl_low = sim.model.actuator_ctrlrange[actuators, 0]
        self._ctrl_high = sim.model.actuator_ctrlrange[actuators, 1]
        self._substeps = int(rs_env.control_timestep / rs_env.model_timestep)
        self._full_m = np.ndarray(shape=(nv, nv), dtype=np.float64, order="C")
        self._jacp = np.zeros((3, nv))
        self._jacr = np.zeros((3, nv))
        self._cjacp = np.zeros((3, nv))
        self._cjacr = np.zeros((3, nv))
        self._observables: list[Any] = []
        self._sampling_timestep = 0.0

    @classmethod
    def create(cls, rs_env: Any) -> FastStepper | None:
        """A stepper for ``rs_env``, or None where the fast path does not reproduce robosuite exactly."""
        return None if _supported(rs_env) is not None else cls(rs_env)

    def reset(self) -> None:
        """Re-read controller and observables after ``env.reset()`` (robosuite rebuilds its controllers)."""
        self._osc = self._env.robots[0].composite_controller.part_controllers["right"]
        observables = [o for o in self._env._observables.values() if o.is_enabled()]
        rates = {o._sampling_timestep for o in observables}
        clocks = {(o._time_since_last_sample, o._sampled) for o in observables}
        same_clock = len(rates) == 1 and len(clocks) == 1
        no_delay = all(o._delayer is self._no_delay for o in observables)
        self._observables = observables
        self._shared_clock = same_clock and no_delay
        self._sampling_timestep = rates.pop() if rates else 0.0

    # ---------------------------------------------------------------------------------------- substeps
    def _osc_substep(self) -> None:
        """One ``OperationalSpaceController.run_controller`` (+ clip + write ctrl), robosuite's arithmetic.

        MuJoCo fills the Jacobians and the mass matrix; :func:`_osc_kernel` does the rest in one compiled
        call. The results go into the controller's own preallocated C-ordered arrays, as robosuite does.
        """
        osc = self._osc
        data, model = self._data, self._model
        mujoco.mj_jacSite(model, data, self._jacp, self._jacr, self._ref_site)
        mujoco.mj_jacSite(model, data, self._cjacp, self._cjacr, self._center_site)
        mujoco.mj_fullM(model, self._full_m, data.qM)
        # robosuite's own indexing expression: its result is F-ordered, and the numba helpers below are
        # compiled per memory layout, with different BLAS calls (and roundings) for C and F operands
        mass_matrix = self._full_m[self._qvel_index, :][:, self._qvel_index]
        origin_pos, origin_ori, joint_pos, joint_vel, torques = _osc_kernel(
            self._jacp, self._jacr, self._cjacp, self._cjacr, mass_matrix,
            data.qpos, data.qvel, data.qfrc_bias, data.site_xpos, data.site_xmat, data.ctrl,
            self._ref_site, self._center_site, self._qpos_index, self._qvel_index, self._actuators,
            self._ctrl_low, self._ctrl_high, osc.goal_pos, osc.goal_ori, osc.kp, osc.kd, osc.initial_joint,
            osc.ref_pos, osc.ref_ori_mat, osc.ref_pos_vel, osc.ref_ori_vel, osc.J_pos, osc.J_ori, osc.J_full,
        )  # fmt: skip
        # leave the controller's state as robosuite's last run_controller() leaves it
        osc.origin_pos, osc.origin_ori = origin_pos, origin_ori
        osc.joint_pos, osc.joint_vel, osc.mass_matrix = joint_pos, joint_vel, mass_matrix
        osc.torques = torques
        osc.new_update = True

    def _sample_all(self, cache: dict) -> None:
        """``Observable.update``'s sampling branch for every enabled observable, in registry order."""
        for o in self._observables:
            obs = np.array(o._filter(o._corrupter(o._sensor(cache))))
            o._current_observed_value = obs[0] if len(obs.shape) == 1 and obs.shape[0] == 1 else obs
            cache[o.name] = np.array(o._current_observed_value)
            o._sampled = True
            o._current_delay = o._delayer()

    def step(self, action: np.ndarray) -> float:
        """One control step with ``action`` (robosuite's raw action vector); returns robosuite's reward."""
        env = self._env
        model, data = self._model, self._data
        env.timestep += 1
        shared = self._shared_clock and bool(self._observables)
        if shared:
            first = self._observables[0]
            t_since, sampled = first._time_since_last_sample, first._sampled
            period = self._sampling_timestep
            dt = env.model_timestep
            cache = env._obs_cache
        for i in range(self._substeps):
            mujoco.mj_step1(model, data)
            if i == 0:
                env._pre_action(action, True)
            else:
                self._osc_substep()
            mujoco.mj_step2(model, data)
            if not shared:
                env._update_observables()
                continue
            # Observable.update() with one clock for all (same rate, no delay, same phase)
            t_since += dt
            if not sampled and period - 0.0 >= t_since:
                self._sample_all(cache)
                sampled = True
            if t_since >= period:
                if not sampled:
                    self._sample_all(cache)
                t_since %= period
                sampled = False
        if shared:
            for o in self._observables:
                o._time_since_last_sample = t_since
                o._sampled = sampled
        env.cur_time += env.control_timestep
        reward, _, _ = env._post_action(action)
        return reward


# ------------------------------------------------------------------------------------------------ kernel
@numba.njit(cache=True)
def _osc_kernel(
    jacp, jacr, cjacp, cjacr, mass_matrix, qpos, qvel, qfrc_bias, site_xpos, site_xmat, ctrl,
    ref_site, center_site, qpos_index, qvel_index, actuators, ctrl_low, ctrl_high,
    goal_pos, goal_ori, kp, kd, initial_joint,
    ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel, j_pos, j_ori, j_full,
):  # fmt: skip
    """``OSC.update()`` + ``run_controller()`` + clip into ``ctrl``, operation for operation.

    Every line mirrors robosuite 1.5's ``OperationalSpaceController`` (base frame, no interpolators,
    uncoupled): the same products of the same C-ordered operands, and robosuite's own numba helpers
    (``opspace_matrices``, ``orientation_error``, ``nullspace_torques``). Elementwise arithmetic
    is IEEE-identical to numpy's (numba does not contract to FMA without fastmath); the matrix products
    go through BLAS, as numpy's do. tests/sim/test_fast_step.py holds the trajectories to stock robosuite.
    """
    # composite_controller.update_state(): the controller origin is the arm base's "center" site
    origin_pos = site_xpos[center_site].copy()
    origin_ori = site_xmat[center_site].reshape((3, 3)).copy()
    # Controller.update() -> update_reference_data() (lite physics: no mj_forward)
    ref_pos[:] = site_xpos[ref_site]
    ref_ori_mat[:, :] = site_xmat[ref_site].reshape((3, 3))
    ref_pos_vel[:] = np.dot(jacp, qvel)
    ref_ori_vel[:] = np.dot(jacr, qvel)
    n = qvel_index.shape[0]
    for r in range(3):
        for c in range(n):
            j_pos[r, c] = jacp[r, qvel_index[c]]
            j_ori[r, c] = jacr[r, qvel_index[c]]
    j_full[0:3, :] = j_pos
    j_full[3:6, :] = j_ori
    joint_pos = np.empty(qpos_index.shape[0])
    for i in range(qpos_index.shape[0]):
        joint_pos[i] = qpos[qpos_index[i]]
    joint_vel = np.empty(n)
    for i in range(n):
        joint_vel[i] = qvel[qvel_index[i]]
    # run_controller()
    desired_world_pos = origin_pos + np.dot(origin_ori, goal_pos)
    desired_world_ori = np.dot(origin_ori, goal_ori)
    ori_error = orientation_error(desired_world_ori, ref_ori_mat)
    position_error = desired_world_pos - ref_pos
    base_pos_vel = np.dot(cjacp, qvel)
    vel_pos_error = -(ref_pos_vel - base_pos_vel)
    desired_force = np.multiply(position_error, kp[0:3]) + np.multiply(vel_pos_error, kd[0:3])
    base_ori_vel = np.dot(cjacr, qvel)
    vel_ori_error = -(ref_ori_vel - base_ori_vel)
    desired_torque = np.multiply(ori_error, kp[3:6]) + np.multiply(vel_ori_error, kd[3:6])
    _, lambda_pos, lambda_ori, nullspace_matrix = opspace_matrices(mass_matrix, j_full, j_pos, j_ori)
    decoupled_force = np.dot(lambda_pos, desired_force)
    decoupled_torque = np.dot(lambda_ori, desired_torque)
    decoupled_wrench = np.concatenate((decoupled_force, decoupled_torque))
    bias = np.empty(n)
    for i in range(n):
        bias[i] = qfrc_bias[qvel_index[i]]
    torques = np.dot(j_full.T, decoupled_wrench) + bias
    torques += nullspace_torques(mass_matrix, nullspace_matrix, initial_joint, joint_pos, joint_vel)
    # Controller.run_controller() clip, written to the arm's actuators
    for i in range(actuators.shape[0]):
        ctrl[actuators[i]] = min(max(torques[i], ctrl_low[i]), ctrl_high[i])
    return origin_pos, origin_ori, joint_pos, joint_vel, torques
