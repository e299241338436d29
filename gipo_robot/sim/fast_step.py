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
command is constant within a step and already sits in ``data.ctrl``): the same quantities, computed by
the same numpy/numba calls in the same order as ``OperationalSpaceController.run_controller``, so
``data.ctrl`` gets the same bits. Observables are sampled on the same substep robosuite samples them
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
import numpy as np


def _supported(rs_env: Any) -> str | None:
    """Why the fast path cannot drive ``rs_env``, or None if it can."""
    from robosuite.controllers.parts.arm.osc import OperationalSpaceController
    from robosuite.controllers.parts.gripper.simple_grip import SimpleGripController

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
        from robosuite.utils.control_utils import nullspace_torques, opspace_matrices, orientation_error
        from robosuite.utils.observables import NO_DELAY

        self._env = rs_env
        self._nullspace_torques = nullspace_torques
        self._opspace_matrices = opspace_matrices
        self._orientation_error = orientation_error
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
        self._qpos_index = osc.qpos_index
        self._qvel_index = osc.qvel_index
        actuators = robot._ref_actuators_indexes_dict["right"]
        self._actuators = actuators
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
        """One ``OperationalSpaceController.run_controller`` (+ clip + write ctrl), robosuite's arithmetic."""
        osc = self._osc
        data = self._data
        model = self._model
        sd = data  # the raw MjData: the same arrays robosuite's wrapper forwards to, without its __getattr__
        qvel = sd.qvel
        # composite_controller.update_state(): controller origin = the arm's base "center" site
        origin_pos = np.array(sd.site_xpos[self._center_site])
        origin_ori = np.array(sd.site_xmat[self._center_site].reshape([3, 3]))
        # Controller.update() -> update_reference_data(); lite physics: no forward(). The results go into the
        # controller's own preallocated C-ordered arrays, as robosuite does: numpy's dot on an F-ordered copy
        # of the same numbers can round differently in the last bit.
        mujoco.mj_jacSite(model, data, self._jacp, self._jacr, self._ref_site)
        ref_pos, ref_ori_mat, j_pos, j_ori, j_full = (
            osc.ref_pos,
            osc.ref_ori_mat,
            osc.J_pos,
            osc.J_ori,
            osc.J_full,
        )
        ref_pos[:] = np.array(sd.site_xpos[self._ref_site])
        ref_ori_mat[:, :] = np.array(sd.site_xmat[self._ref_site].reshape([3, 3]))
        osc.ref_pos_vel[:] = np.array(np.dot(self._jacp, qvel))
        osc.ref_ori_vel[:] = np.array(np.dot(self._jacr, qvel))
        j_pos[:, :] = np.array(self._jacp.reshape((3, -1))[:, self._qvel_index])
        j_ori[:, :] = np.array(self._jacr.reshape((3, -1))[:, self._qvel_index])
        j_full[:, :] = np.vstack([j_pos, j_ori])
        joint_pos = np.array(sd.qpos[self._qpos_index])
        joint_vel = np.array(qvel[self._qvel_index])
        mujoco.mj_fullM(model, self._full_m, sd.qM)
        mass_matrix = np.reshape(self._full_m, (len(qvel), len(qvel)))
        mass_matrix = mass_matrix[self._qvel_index, :][:, self._qvel_index]
        # run_controller(), input_ref_frame == "base", no interpolators
        desired_world_pos = origin_pos + np.dot(origin_ori, osc.goal_pos)
        desired_world_ori = np.dot(origin_ori, osc.goal_ori)
        ori_error = self._orientation_error(desired_world_ori, ref_ori_mat)
        position_error = desired_world_pos - ref_pos
        mujoco.mj_jacSite(model, data, self._cjacp, self._cjacr, self._center_site)
        base_pos_vel = np.array(np.dot(self._cjacp, qvel))
        vel_pos_error = -(osc.ref_pos_vel - base_pos_vel)
        desired_force = np.multiply(np.array(position_error), np.array(osc.kp[0:3])) + np.multiply(
            vel_pos_error, osc.kd[0:3]
        )
        base_ori_vel = np.array(np.dot(self._cjacr, qvel))
        vel_ori_error = -(osc.ref_ori_vel - base_ori_vel)
        desired_torque = np.multiply(np.array(ori_error), np.array(osc.kp[3:6])) + np.multiply(
            vel_ori_error, osc.kd[3:6]
        )
        _, lambda_pos, lambda_ori, nullspace_matrix = self._opspace_matrices(
            mass_matrix, j_full, j_pos, j_ori
        )
        decoupled_force = np.dot(lambda_pos, desired_force)
        decoupled_torque = np.dot(lambda_ori, desired_torque)
        decoupled_wrench = np.concatenate([decoupled_force, decoupled_torque])
        torques = np.dot(j_full.T, decoupled_wrench) + sd.qfrc_bias[self._qvel_index]
        torques += self._nullspace_torques(
            mass_matrix, nullspace_matrix, osc.initial_joint, joint_pos, joint_vel
        )
        sd.ctrl[self._actuators] = np.clip(torques, self._ctrl_low, self._ctrl_high)
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
