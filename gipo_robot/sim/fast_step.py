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
command is constant within a step and already sits in ``data.ctrl``). Those substeps run in one
compiled call, :func:`_osc_substep_run`: MuJoCo's ``mj_step1``/``mj_step2``/``mj_jacSite``/``mj_fullM``
through its C API, and :func:`_osc_kernel`, the same operations in the same order as
``OperationalSpaceController.run_controller``. numba's elementwise float arithmetic is IEEE-identical
to numpy's (no FMA contraction without fastmath), and its matrix products call BLAS with the operand
layouts numpy uses (robosuite's numba helpers are compiled per memory layout; a C-ordered mass matrix
where robosuite passes an F-ordered one changes the last bit). But numba's products go through scipy's
OpenBLAS, numpy's through numpy's own copy: where the two pick the same kernel for the CPU,
``data.ctrl`` gets the same bits (seen on the machine that measured the speed-up); where they do not,
the last bits differ from the first step (~1e-11 in qpos/qvel after 60 random steps, seen on another
machine of the same kind). The contract the tests hold is 1e-8. Observables are sampled on the same
substep robosuite samples them (one shared sampling clock, the same float arithmetic as
``Observable.update``), in the same order, so cached inter-observable values match.
``env._post_action`` computes reward and bookkeeping.

Measured (Lift, one env, cProfile): a substep went from 329 us (stock) to about 120 us with the OSC in
Python, and to about 44 us compiled, of which ``mj_step1`` + ``mj_step2`` are 31 us. What is left per
control step is robosuite's ``_pre_action`` on the first substep and the observables.

Where it does not apply (a non-OSC arm controller, interpolators, several robots, observables with
delays or their own sampling rates), :meth:`FastStepper.create` returns None and the env uses
robosuite's ``step``. tests/sim/test_fast_step.py replays seeds and action sequences through both loops
and requires the same trajectories to 1e-8.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import mujoco
import numba
import numpy as np
from robosuite.utils import transform_utils
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
        self._model_ptr, self._data_ptr = self._model._address, self._data._address
        self._full_m = np.ndarray(shape=(nv, nv), dtype=np.float64, order="C")
        self._jacp = np.zeros((3, nv))
        self._jacr = np.zeros((3, nv))
        self._cjacp = np.zeros((3, nv))
        self._cjacr = np.zeros((3, nv))
        self._observables: list[Any] = []
        self._sampling_timestep = 0.0

    @classmethod
    def create(cls, rs_env: Any) -> FastStepper | None:
        """A stepper for ``rs_env`` (warmed up: :meth:`warm_up`), or None where the fast path does not
        reproduce robosuite exactly."""
        if _supported(rs_env) is not None:
            return None
        stepper = cls(rs_env)
        stepper.warm_up()
        return stepper

    def warm_up(self) -> None:
        """Compile now what the first :meth:`step` of a process would compile or load, so that the first
        control step of a timed loop (deploy, a teleop session) is not late: :func:`_osc_substep_run`
        (about 1.6 s, once per process) and robosuite's numba helpers (30-50 ms). Nothing is stepped: the
        kernel is compiled for this env's argument types, and the helpers, pure functions, are called on
        dummy arrays with the layouts robosuite passes them."""
        osc = self._env.robots[0].composite_controller.part_controllers["right"]
        _osc_substep_run.compile(tuple(numba.typeof(a) for a in self._kernel_args(0, osc)))
        n = len(self._qvel_index)
        mass = np.asfortranarray(np.eye(n))  # robosuite's mass matrix is F-ordered
        opspace_matrices(mass, np.eye(6, n), np.eye(3, n), np.eye(3, n, 3))
        nullspace_torques(mass, np.eye(n), np.zeros(n), np.zeros(n), np.zeros(n))
        orientation_error(np.eye(3), np.eye(3))
        transform_utils.quat2mat(np.array([0.0, 0.0, 0.0, 1.0]))
        transform_utils.mat2quat(np.eye(3))
        transform_utils.mat2quat(np.eye(4)[:3, :3])  # a strided view: numba's 'A' layout

    def reset(self) -> None:
        """Re-read sim, controller and observables after ``env.reset()`` (robosuite rebuilds its controllers,
        and with ``hard_reset=True`` the whole MjModel/MjData)."""
        sim = self._env.sim
        self._model, self._data = sim.model._model, sim.data._data
        self._model_ptr, self._data_ptr = self._model._address, self._data._address
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
    def _osc_substeps(self, count: int) -> None:
        """``count`` physics substeps, each with OSC ``run_controller`` (+ clip + write ctrl) before it.

        One compiled call (:func:`_osc_substep_run`) steps MuJoCo through its C API and runs the torque
        law; the controller's own preallocated C-ordered arrays receive the reference data, as in
        robosuite, and its state is left as robosuite's last ``run_controller()`` leaves it.
        """
        osc = self._osc
        origin_pos, origin_ori, joint_pos, joint_vel, mass_matrix, torques = _osc_substep_run(
            *self._kernel_args(count, osc)
        )
        osc.origin_pos, osc.origin_ori = origin_pos, origin_ori
        osc.joint_pos, osc.joint_vel, osc.mass_matrix = joint_pos, joint_vel, mass_matrix
        osc.torques = torques
        osc.new_update = True

    def _kernel_args(self, count: int, osc: Any) -> tuple:
        """The arguments of :func:`_osc_substep_run`: ``count`` substeps driven by the controller ``osc``."""
        data = self._data
        return (
            count, self._model_ptr, self._data_ptr,
            self._jacp, self._jacr, self._cjacp, self._cjacr, self._full_m,
            data.qM, data.qpos, data.qvel, data.qfrc_bias, data.site_xpos, data.site_xmat, data.ctrl,
            self._ref_site, self._center_site, self._qpos_index, self._qvel_index, self._actuators,
            self._ctrl_low, self._ctrl_high, osc.goal_pos, osc.goal_ori, osc.kp, osc.kd, osc.initial_joint,
            osc.ref_pos, osc.ref_ori_mat, osc.ref_pos_vel, osc.ref_ori_vel, osc.J_pos, osc.J_ori, osc.J_full,
        )  # fmt: skip

    def _sample_all(self, cache: dict) -> None:
        """``Observable.update``'s sampling branch for every enabled observable, in registry order."""
        for o in self._observables:
            obs = np.array(o._filter(o._corrupter(o._sensor(cache))))
            o._current_observed_value = obs[0] if len(obs.shape) == 1 and obs.shape[0] == 1 else obs
            cache[o.name] = np.array(o._current_observed_value)
            o._sampled = True
            o._current_delay = o._delayer()

    def _sampling_plan(self) -> list[bool]:
        """Which substeps of this control step end with a sample, by ``Observable.update``'s clock.

        All observables share one clock (same rate, no delay, same phase; see :meth:`reset`), and the clock
        does not depend on the physics, so the plan is known before stepping. Advances the clock.
        """
        first = self._observables[0]
        t_since, sampled = first._time_since_last_sample, first._sampled
        period, dt = self._sampling_timestep, self._env.model_timestep
        plan = []
        for _ in range(self._substeps):
            t_since += dt
            sample = False
            if not sampled and period - 0.0 >= t_since:
                sample = sampled = True
            if t_since >= period:
                sample = sample or not sampled
                t_since %= period
                sampled = False
            plan.append(sample)
        for o in self._observables:
            o._time_since_last_sample = t_since
            o._sampled = sampled
        return plan

    def step(self, action: np.ndarray) -> float:
        """One control step with ``action`` (robosuite's raw action vector); returns robosuite's reward."""
        env = self._env
        env.timestep += 1
        shared = self._shared_clock and bool(self._observables)
        # where observables are read: after those substeps (every substep without a shared clock)
        plan = self._sampling_plan() if shared else [True] * self._substeps
        # substep 0: robosuite's own _pre_action sets the goal and the gripper command, then runs the OSC
        mujoco.mj_step1(self._model, self._data)
        env._pre_action(action, True)
        mujoco.mj_step2(self._model, self._data)
        i = 0
        while True:
            if plan[i]:
                self._sample_all(env._obs_cache) if shared else env._update_observables()
            if i == self._substeps - 1:
                break
            # the run of substeps up to and including the next one that samples
            j = next((k for k in range(i + 1, self._substeps) if plan[k]), self._substeps - 1)
            self._osc_substeps(j - i)
            i = j
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


class _MuJoCoC:
    """MuJoCo's C functions, called from compiled code on ``MjModel._address`` / ``MjData._address``.

    The same shared library the ``mujoco`` bindings use, so the same code and state; pointers travel as
    64-bit integers (one register each, like a pointer, in the x86-64 and AArch64 calling conventions).
    One difference from the bindings: a MuJoCo *error* (not a warning; e.g. an arena overflow) raised
    inside these calls aborts the process instead of raising a Python exception. The vector env reports
    such a worker as lost (:class:`~gipo_robot.sim.vector.WorkerLostError`).
    """

    def __init__(self) -> None:
        path = Path(mujoco.__file__).parent / f"libmujoco.so.{mujoco.__version__}"
        lib = ctypes.CDLL(str(path))  # the copy the bindings already loaded: ctypes gets the same handle
        ptr, i32 = ctypes.c_uint64, ctypes.c_int
        self.step1 = self._fn(lib.mj_step1, ptr, ptr)
        self.step2 = self._fn(lib.mj_step2, ptr, ptr)
        self.jac_site = self._fn(lib.mj_jacSite, ptr, ptr, ptr, ptr, i32)
        self.full_m = self._fn(lib.mj_fullM, ptr, ptr, ptr)

    @staticmethod
    def _fn(fn: Any, *argtypes: Any) -> Any:
        fn.argtypes, fn.restype = list(argtypes), None
        return fn


_MJ = _MuJoCoC()
_mj_step1, _mj_step2, _mj_jac_site, _mj_full_m = _MJ.step1, _MJ.step2, _MJ.jac_site, _MJ.full_m


# not cached: numba cannot cache code that holds ctypes pointers (compiling takes about a second,
# once per process; _osc_kernel itself comes from the cache). Passing the functions as arguments
# instead would let it cache, but every call would then type its arguments in Python (~9 us per call).
@numba.njit
def _osc_substep_run(
    count, model, data,
    jacp, jacr, cjacp, cjacr, full_m, qm, qpos, qvel, qfrc_bias, site_xpos, site_xmat, ctrl,
    ref_site, center_site, qpos_index, qvel_index, actuators, ctrl_low, ctrl_high,
    goal_pos, goal_ori, kp, kd, initial_joint,
    ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel, j_pos, j_ori, j_full,
):  # fmt: skip
    """``count`` times: ``mj_step1``, the OSC torque law into ``ctrl``, ``mj_step2``.

    What robosuite's ``sim.step()`` + ``robot.control()`` do on a substep without a new action, with the
    Jacobians and mass matrix from MuJoCo's own ``mj_jacSite`` / ``mj_fullM``.
    """
    n = qvel_index.shape[0]
    for _ in range(count):
        _mj_step1(model, data)
        _mj_jac_site(model, data, jacp.ctypes.data, jacr.ctypes.data, ref_site)
        _mj_jac_site(model, data, cjacp.ctypes.data, cjacr.ctypes.data, center_site)
        _mj_full_m(model, full_m.ctypes.data, qm.ctypes.data)
        # robosuite indexes ``full_m[idx, :][:, idx]``, which numpy returns F-ordered; robosuite's numba
        # helpers are compiled per memory layout, with different BLAS calls (and roundings) for C and F
        mass_matrix = np.empty((n, n)).T
        for r in range(n):
            for c in range(n):
                mass_matrix[r, c] = full_m[qvel_index[r], qvel_index[c]]
        origin_pos, origin_ori, joint_pos, joint_vel, torques = _osc_kernel(
            jacp, jacr, cjacp, cjacr, mass_matrix, qpos, qvel, qfrc_bias, site_xpos, site_xmat, ctrl,
            ref_site, center_site, qpos_index, qvel_index, actuators, ctrl_low, ctrl_high,
            goal_pos, goal_ori, kp, kd, initial_joint,
            ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel, j_pos, j_ori, j_full,
        )  # fmt: skip
        _mj_step2(model, data)
    return origin_pos, origin_ori, joint_pos, joint_vel, mass_matrix, torques
