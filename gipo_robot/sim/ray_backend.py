"""The vector env on Ray: W rollout actors, each owning a share of the N envs, stepped in lockstep.

Legend: ``N`` environments, ``W`` Ray workers (actors), ``A`` action size.

Same contract as :class:`~gipo_robot.sim.vector.SubprocVectorEnv` (module docstring of
:mod:`gipo_robot.sim.vector`): the policy runs once per step in the parent on the whole batch; ``step``
sends every worker its rows of the ``(N, A)`` actions before reading any result, then stitches the
results back together in env order. Worker ``w`` owns a contiguous block of envs (``numpy.array_split``
of ``0..N-1`` into W blocks) and steps them one after another in its own process, on this machine or on
any node of a Ray cluster. Env ``i`` is seeded exactly as in the other backends, so for the same seeds
and actions a run equals the subprocess backend bit for bit (tests/sim/test_ray_backend.py).

Only the plain :class:`~gipo_robot.sim.config.EnvConfig` crosses to a worker, and only arrays,
floats and small dicts come back. Fault tolerance: a worker that dies (process killed, node lost) is
replaced by a fresh actor built from the same config, and the call raises
:class:`~gipo_robot.sim.vector.WorkerLostError`; the caller drops what it had collected since the last
reset and resets (the fine-tuning loop re-collects the iteration). After ``max_restarts`` replacements
the env gives up with :class:`~gipo_robot.sim.robosuite_env.SimError`.

Ray itself: :func:`connect` joins a cluster (``address="auto"`` or ``"ray://host:10001"``) or starts a
small local instance (no dashboard, worker logs not forwarded, Ray's own log lines below ERROR not
printed, a 512 MiB object store). An already initialised Ray (``ray.init`` called by the user with their
own settings) is used as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import numpy as np

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
except ImportError as err:  # the optional extra
    raise ImportError("the Ray backend needs Ray: pip install gipo-robot[ray]") from err

from gipo_robot.sim.config import EnvConfig
from gipo_robot.sim.robosuite_env import SimError
from gipo_robot.sim.vector import SyncVectorEnv, VectorEnv, WorkerLostError

__all__ = ["EnvWorker", "RayVectorEnv", "connect"]

#: Object store of a local Ray instance started by :func:`connect`, bytes (Ray's default is 30% of RAM).
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20


LOCAL_NODE_IP = "127.0.0.1"
"""The address a Ray started here binds to: loopback, so nothing of ours listens on the network."""


def _keep_on_loopback() -> None:
    """Make a local Ray bind and talk on 127.0.0.1 only.

    Ray 2.60 turns ``_node_ip_address="127.0.0.1"`` into the machine's network address unless it runs
    "without clusters" (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read once when ray is imported): then every
    server (GCS, raylet, workers, runtime-env agent) binds to loopback. The variable is set for the
    processes Ray starts, and the flag for this one, which has imported ray already.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False


def connect(address: str | None = None, *, num_cpus: float | None = None) -> None:
    """Make sure this process is connected to Ray.

    Args:
        address: None starts a local Ray instance on this machine; ``"auto"`` joins the cluster this
            machine belongs to; ``"ray://host:port"`` joins a remote one. Ignored when Ray is already
            initialised in this process.
        num_cpus: CPUs a local instance offers (None: this machine's count). Workers reserve CPUs, so a
            local instance needs at least ``workers x cpus_per_worker``.
    """
    if ray.is_initialized():
        return
    if address is None:
        _keep_on_loopback()
        ray.init(
            num_cpus=num_cpus if num_cpus is not None else os.cpu_count(),
            _node_ip_address=LOCAL_NODE_IP,  # a local Ray binds and talks on loopback only
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,  # keeps Ray's start-up lines out of our output
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    else:
        ray.init(address=address, log_to_driver=False)


@ray.remote(max_restarts=0)  # a dead worker is replaced by RayVectorEnv itself, with a fresh actor
class EnvWorker:
    """A Ray actor owning ``num_envs`` envs of one config, stepped one after another in its process.

    Args:
        config: the env every slot builds.
        num_envs: envs owned by this worker.
    """

    def __init__(self, config: EnvConfig, num_envs: int) -> None:
        self.venv = SyncVectorEnv(config, num_envs)

    def spec(self) -> tuple:
        """``(robot_spec, single_observation_space, single_action_space)``."""
        return self.venv.robot_spec, self.venv.single_observation_space, self.venv.single_action_space

    def pid(self) -> int:
        """The worker's process id (tests kill it to check fault tolerance)."""
        return os.getpid()

    def reset(self, seeds: list[int | None]) -> tuple:
        """Reset this worker's envs with one seed each; ``(obs (n, ...), infos)``."""
        return self.venv.reset(seeds)

    def step(self, actions: np.ndarray) -> tuple:
        """Step this worker's envs with ``(n, A)`` actions; auto-reset as in the vector contract."""
        return self.venv.step(actions)

    def close(self) -> None:
        self.venv.close()


def _concat(parts: list[tuple]) -> tuple:
    """Stitch per-worker step results ``(obs, reward, terminated, truncated, infos)`` in env order."""
    obs = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    arrays = [np.concatenate([p[j] for p in parts]) for j in (1, 2, 3)]
    infos = [info for p in parts for info in p[4]]
    return (obs, *arrays, infos)


class RayVectorEnv(VectorEnv):
    """N envs spread over W Ray actors, stepped in lockstep; see the module docstring.

    Args:
        config: the env every worker builds.
        num_envs: N, envs in all.
        workers: W, Ray actors (1 <= W <= N); worker ``w`` owns ``array_split(range(N), W)[w]``.
        address: Ray address (see :func:`connect`); None starts Ray locally if it is not running.
        cpus_per_worker: CPUs each actor reserves from Ray's scheduler.
        max_restarts: dead workers replaced over this env's life before it gives up.
        timeout_s: how long one call may take before the env declares the workers hung.

    Raises:
        ValueError: ``num_envs`` or ``workers`` out of range.
        SimError: the workers could not be placed (not enough CPUs in the cluster) or failed to build.
    """

    def __init__(
        self,
        config: EnvConfig,
        num_envs: int,
        *,
        workers: int = 1,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
        max_restarts: int = 3,
        timeout_s: float = 120.0,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if not 1 <= workers <= num_envs:
            raise ValueError(f"workers must be between 1 and num_envs ({num_envs}), got {workers}")
        if cpus_per_worker < 0 or max_restarts < 0:
            raise ValueError("cpus_per_worker and max_restarts must be >= 0")
        self.config = config
        self.num_envs = num_envs
        self.num_workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.max_restarts = max_restarts
        self.timeout_s = timeout_s
        self.restarts = 0
        self.slices = [(int(b[0]), int(b[-1]) + 1) for b in np.array_split(np.arange(num_envs), workers)]
        connect(address, num_cpus=max(os.cpu_count() or 1, workers * cpus_per_worker))
        self.actors: list[Any] = [self._start(w) for w in range(workers)]
        try:
            spec, obs_space, act_space = self._get([a.spec.remote() for a in self.actors], "start")[0]
        except SimError:
            self.close()
            raise
        self.robot_spec = spec
        self.single_observation_space = obs_space
        self.single_action_space = act_space

    def _start(self, w: int) -> Any:
        start, stop = self.slices[w]
        return EnvWorker.options(num_cpus=self.cpus_per_worker).remote(self.config, stop - start)

    def _get(self, refs: list[Any], what: str) -> list[Any]:
        """Results of one call on every worker, in worker order; replaces dead workers (then raises)."""
        deadline = time.monotonic() + self.timeout_s
        results, lost = [], []
        for w, ref in enumerate(refs):
            try:
                results.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic())))
            except RayActorError as err:
                lost.append((w, err))
            except GetTimeoutError:
                raise SimError(
                    f"Ray worker {w} gave no reply to {what} within {self.timeout_s} s (if it never started: "
                    f"each worker needs {self.cpus_per_worker} CPUs; the cluster has "
                    f"{ray.cluster_resources().get('CPU', 0)} in all)"
                ) from None
            except RayTaskError as err:
                raise SimError(f"Ray worker {w} failed in {what}: {err}") from None
        if lost:
            self._replace([w for w, _ in lost])
            w, err = lost[0]
            raise WorkerLostError(
                f"Ray worker(s) {[w for w, _ in lost]} died during {what} ({type(err).__name__}); replaced "
                f"(restart {self.restarts} of at most {self.max_restarts}); reset the envs and collect again",
                self.restarts,
            )
        return results

    def _replace(self, dead: list[int]) -> None:
        if self.restarts + len(dead) > self.max_restarts:
            raise SimError(
                f"Ray workers died {self.restarts + len(dead)} times, more than max_restarts="
                f"{self.max_restarts}; giving up"
            )
        for w in dead:
            ray.kill(self.actors[w], no_restart=True)
            self.actors[w] = self._start(w)
            self.restarts += 1
        try:  # wait until the replacements have built their envs
            self._get([self.actors[w].pid.remote() for w in dead], "restart")
        except WorkerLostError as err:
            raise SimError(f"a replacement Ray worker died as it started: {err}") from None

    def worker_pids(self) -> list[int]:
        """Process id of every worker, in worker order."""
        return self._get([a.pid.remote() for a in self.actors], "pid")

    def reset(
        self, seed: int | list[int] | None = None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        seeds = self._seeds(seed)
        refs = [a.reset.remote(seeds[lo:hi]) for a, (lo, hi) in zip(self.actors, self.slices, strict=True)]
        parts = self._get(refs, "reset")
        obs = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        return obs, [info for p in parts for info in p[1]]

    def step(self, actions: np.ndarray) -> tuple:
        a = self._check_actions(actions)
        refs = [w.step.remote(a[lo:hi]) for w, (lo, hi) in zip(self.actors, self.slices, strict=True)]
        return _concat(self._get(refs, "step"))

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(RayActorError, RayTaskError, GetTimeoutError):  # a dead one is gone
                ray.get(actor.close.remote(), timeout=10.0)
            ray.kill(actor, no_restart=True)
        self.actors = []
