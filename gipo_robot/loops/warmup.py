"""Warm-up before the first deadline: what a timed loop would otherwise do on its first control step.

A control loop's first step must cost what every later step costs: a stall there misses deadlines and, on
a real arm, jerks it at the start of motion. What is initialised on first use is done before the loop
starts, without moving anything:

- the policy: :func:`warm_up_actor` runs the network once on a zero observation shaped like the robot's
  (torch allocates and picks its kernels on the first forward of each shape); no random number is drawn
  and the actor's plan is left as it was;
- the simulator: its compiled control step is warmed up when the env is built
  (:meth:`gipo_robot.sim.fast_step.FastStepper.warm_up`), before a session starts.

Measured on Lift (2 cores, no GPU), the first control step of a process took 1.7-2.0 s before (numba
compiling the simulator's control step) and the quickstart's BC policy's first forward 1.6 ms (0.2 ms
after); see ``BENCHMARKS.md`` (*record*, *control_loop*) for first-episode timing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.loops.actor import PolicyActor, policy_input

__all__ = ["warm_up_actor"]


def warm_up_actor(actor: Any, spec: RobotSpec) -> float:
    """Run a :class:`~gipo_robot.loops.actor.PolicyActor`'s policy once (its mean, no sampling) on a zero
    observation with the shapes and dtypes of ``spec``'s observations; nothing else is touched.

    Args:
        actor: the actor about to drive; other actors (not a ``PolicyActor``) are left alone.
        spec: the robot it will drive (its ``obs_shapes``/``obs_dtypes``).

    Returns:
        Seconds the forward took (0.0 when there was nothing to warm up).
    """
    if not isinstance(actor, PolicyActor):
        return 0.0
    import torch

    obs = {
        name: np.zeros(shape, dtype=spec.obs_dtypes.get(name, "float32"))
        for name, shape in spec.obs_shapes.items()
    }
    batch = policy_input(obs, actor.low_dim, actor.images)
    started = time.perf_counter()
    with torch.no_grad():
        actor.policy.mode(batch)
    return time.perf_counter() - started
