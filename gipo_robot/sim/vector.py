"""N environments stepped together, in worker processes or in-process, behind one small interface.

Legend: ``N`` environments, ``A`` action size, ``...`` a feature's own shape.

The interface (:class:`VectorEnv`) is what a rollout loop needs and nothing more: ``reset(seed)``,
``step(actions)``, ``close()``, ``num_envs``, ``config``, ``robot_spec`` (a
:class:`~gipo_robot.hardware.robot.RobotSpec`, as every env and robot has) and the single-env spaces.
Observations come batched as a dict of ``(N, ...)`` arrays; the policy runs once per step in the parent
on the batch.
A backend is an entry in :data:`BACKENDS`; callers do not change with it. ``ray``
(:mod:`gipo_robot.sim.ray_backend`, the ``gipo-robot[ray]`` extra, imported only when asked for) spreads
the envs over Ray actors, possibly on other machines.

Auto-reset, same-step convention: when env ``i`` terminates or truncates, ``step`` returns the *first*
observation of its next episode in row ``i`` and puts the last observation of the finished episode in
``infos[i]["final_obs"]`` (and its info in ``infos[i]["final_info"]``). Seeds: ``reset(seed=s)`` gives
env ``i`` the seed ``s + i``; every later episode of env ``i`` draws its seed from env ``i``'s own seed
sequence, exactly as a single :class:`~gipo_robot.sim.robosuite_env.RobosuiteEnv` does after
``reset(seed=s + i)``; so a vector run equals N single-env runs with the same seeds and actions
(tests/sim/test_vector.py).

Workers are spawned processes connected by pipes; each builds its env from the plain
:class:`~gipo_robot.sim.config.EnvConfig` (nothing unpicklable crosses the pipe). A worker that
dies or hangs raises :class:`~gipo_robot.sim.robosuite_env.SimError` in the parent after ``timeout_s``.
A backend that can replace a dead worker (``ray``) raises :class:`WorkerLostError` instead: the worker is
already replaced, the step's results are lost, and the caller resets and collects again.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np

from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.sim.config import EnvConfig
from gipo_robot.sim.robosuite_env import RobosuiteEnv, SimError


class WorkerLostError(SimError):
    """A worker died mid-call and the backend replaced it; the envs must be reset before the next step.

    Attributes:
        restarts: workers replaced so far by this vector env.
    """

    def __init__(self, message: str, restarts: int) -> None:
        super().__init__(message)
        self.restarts = restarts


def _stack(observations: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([o[k] for o in observations]) for k in observations[0]}


def _step_autoreset(env: RobosuiteEnv, action: np.ndarray) -> tuple:
    """One step of one env; on episode end, reset it and return the new episode's first observation."""
    obs, reward, terminated, truncated, info = env.step(action)
    if terminated or truncated:
        final_obs, final_info = obs, info
        obs, info = env.reset()
        info = {**info, "final_obs": final_obs, "final_info": final_info}
    return obs, reward, terminated, truncated, info


class VectorEnv(abc.ABC):
    """N copies of one task stepped in lockstep; see the module docstring for the contract."""

    num_envs: int
    config: EnvConfig
    """The config every env is built from (task, horizon, cameras, ...)."""
    robot_spec: RobotSpec
    """What one env's observations and actions mean."""
    single_observation_space: gym.spaces.Dict
    single_action_space: gym.spaces.Box
    restarts: int = 0
    """Dead workers replaced so far (stays 0 for backends that cannot replace one)."""

    @abc.abstractmethod
    def reset(
        self, seed: int | list[int] | None = None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Reset every env.

        Args:
            seed: env ``i`` gets ``seed + i``; or one seed per env; None continues each env's seed sequence.

        Returns:
            ``(obs, infos)``: obs a dict of ``(N, ...)`` arrays, infos a list of N dicts.
        """

    @abc.abstractmethod
    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every env once.

        Args:
            actions: (N, A) in [-1, 1].

        Returns:
            ``(obs, reward (N,) float64, terminated (N,) bool, truncated (N,) bool, infos)``; finished envs
            are already reset (module docstring).

        Raises:
            ValueError: ``actions`` is not (N, A) or has NaN/inf.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the envs (and worker processes)."""

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _seeds(self, seed: int | list[int] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = [int(s) for s in seed]
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        return seeds

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        shape = (self.num_envs, *self.single_action_space.shape)
        if a.shape != shape:
            raise ValueError(f"actions must have shape {shape} (num_envs, action_dim), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("actions contain NaN or inf")
        return a


class SyncVectorEnv(VectorEnv):
    """All envs in this process, stepped one after another (a baseline, and for debugging)."""

    def __init__(self, config: EnvConfig, num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.envs = [RobosuiteEnv(dataclasses.replace(config)) for _ in range(num_envs)]
        self.config = config
        self.num_envs = num_envs
        self.robot_spec = self.envs[0].robot_spec
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space

    def reset(
        self, seed: int | list[int] | None = None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        results = [env.reset(seed=s) for env, s in zip(self.envs, self._seeds(seed), strict=True)]
        return _stack([r[0] for r in results]), [r[1] for r in results]

    def step(self, actions: np.ndarray) -> tuple:
        a = self._check_actions(actions)
        results = [_step_autoreset(env, a[i]) for i, env in enumerate(self.envs)]
        obs, reward, terminated, truncated, infos = zip(*results, strict=True)
        return _stack(list(obs)), np.array(reward), np.array(terminated), np.array(truncated), list(infos)

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


def _worker(conn: Connection, config: EnvConfig) -> None:
    """Worker loop: build the env, then serve ("reset", seed) / ("step", action) / ("close", None)."""

    def build() -> tuple[RobosuiteEnv, Any]:
        env = RobosuiteEnv(config)
        return env, (env.robot_spec, env.observation_space, env.action_space)

    def handle(env: RobosuiteEnv, command: str, payload: Any) -> Any:
        if command == "step":
            return _step_autoreset(env, payload)
        if command == "reset":
            return env.reset(seed=payload)
        if command == "call":  # ("module:function", argument): see SubprocVectorEnv.call
            module, _, name = payload[0].partition(":")
            return getattr(importlib.import_module(module), name)(env, payload[1])
        raise ValueError(f"unknown command {command!r}")

    serve(conn, build, handle)


def serve(
    conn: Connection, build: Callable[[], tuple[Any, Any]], handle: Callable[[Any, str, Any], Any]
) -> None:
    """A worker process's loop. ``build()`` makes its env and the info to send back (``("ok", info)``, or
    ``("error", traceback)`` and the worker exits); then every ``(command, payload)`` is answered with
    ``("ok", handle(env, command, payload))`` until ``("close", None)``. An exception is sent back as
    ``("error", traceback)`` and ends the worker; the env is closed on the way out."""
    try:
        env, info = build()
        conn.send(("ok", info))
    except Exception as err:  # report any construction failure to the parent, then exit
        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
        return
    try:
        while True:
            command, payload = conn.recv()
            if command == "close":
                conn.send(("ok", None))
                break
            conn.send(("ok", handle(env, command, payload)))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as err:
        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        env.close()


class SubprocVectorEnv(VectorEnv):
    """One env per spawned worker process, connected by a pipe; actions go out to all before any result
    is read, so the N physics loops run in parallel.

    Args:
        config: the env every worker builds.
        num_envs: number of workers (= envs).
        timeout_s: how long to wait for any one worker's reply before declaring it dead.
        start_method: multiprocessing start method; "spawn" (default) gives each worker a clean
            interpreter, safe with OpenGL contexts and numba.
    """

    def __init__(
        self, config: EnvConfig, num_envs: int, *, timeout_s: float = 120.0, start_method: str = "spawn"
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = num_envs
        self.timeout_s = timeout_s
        ctx = mp.get_context(start_method)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(num_envs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, config), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        try:
            spec, obs_space, act_space = self._gather()[0]
        except SimError:
            self.close()
            raise
        self.robot_spec = spec
        self.single_observation_space = obs_space
        self.single_action_space = act_space

    def call(self, i: int, function: str, argument: Any) -> None:
        """Start ``function(env, argument)`` in worker ``i``, on its env, without waiting; :meth:`result`
        returns what it returned. ``function`` is ``"module:name"``, imported in the worker by name, so the
        simulator layer imports nothing of the layers that use it (e.g. evaluation episodes between two
        iterations: :class:`gipo_robot.loops.eval_pool.EvalPool`). The env's state is the function's to
        change: reset the envs before the next :meth:`step`."""
        try:
            self._conns[i].send(("call", (function, argument)))
        except (BrokenPipeError, OSError) as err:
            raise SimError(f"vector env worker {i} died (exit code {self._procs[i].exitcode})") from err

    def result(self, i: int) -> Any:
        """What the function :meth:`call` started in worker ``i`` returned (waits up to ``timeout_s``)."""
        return self._recv(i)

    @property
    def connections(self) -> list[Connection]:
        """The workers' pipes, in worker order (for :func:`multiprocessing.connection.wait`)."""
        return list(self._conns)

    def _recv(self, i: int) -> Any:
        conn = self._conns[i]
        if not conn.poll(self.timeout_s):
            raise SimError(f"vector env worker {i} gave no reply within {self.timeout_s} s")
        try:
            status, payload = conn.recv()
        except EOFError as err:
            raise SimError(f"vector env worker {i} died (exit code {self._procs[i].exitcode})") from err
        if status != "ok":
            raise SimError(f"vector env worker {i} failed: {payload}")
        return payload

    def _gather(self) -> list[Any]:
        return [self._recv(i) for i in range(self.num_envs)]

    def reset(
        self, seed: int | list[int] | None = None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        for conn, s in zip(self._conns, self._seeds(seed), strict=True):
            conn.send(("reset", s))
        results = self._gather()
        return _stack([r[0] for r in results]), [r[1] for r in results]

    def step(self, actions: np.ndarray) -> tuple:
        a = self._check_actions(actions)
        for i, conn in enumerate(self._conns):
            conn.send(("step", a[i]))
        obs, reward, terminated, truncated, infos = zip(*self._gather(), strict=True)
        return _stack(list(obs)), np.array(reward), np.array(terminated), np.array(truncated), list(infos)

    def close(self) -> None:
        stop_workers(self._conns, self._procs)
        self._conns, self._procs = [], []


def stop_workers(conns: list[Connection], procs: list[Any]) -> None:
    """Ask each worker to close (``("close", None)``), wait up to 5 s, terminate the ones still alive."""
    for conn, proc in zip(conns, procs, strict=True):
        if proc.is_alive():
            try:
                conn.send(("close", None))
                if conn.poll(5.0):
                    conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
        conn.close()


def _ray_vector_env(config: EnvConfig, num_envs: int, **options: Any) -> VectorEnv:
    """The Ray backend, imported on first use (Ray is an optional extra)."""
    from gipo_robot.sim.ray_backend import RayVectorEnv

    return RayVectorEnv(config, num_envs, **options)


#: Registry of backends: name -> callable taking ``(config, num_envs, **backend_options)``.
BACKENDS: dict[str, Callable[..., VectorEnv]] = {
    "ray": _ray_vector_env,
    "subprocess": SubprocVectorEnv,
    "sync": SyncVectorEnv,
}


def make_vector_env(
    task: str | EnvConfig,
    num_envs: int,
    *,
    backend: str = "subprocess",
    backend_options: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> VectorEnv:
    """Build ``num_envs`` copies of a task.

    Args:
        task: a task name (then ``env_kwargs`` are :class:`EnvConfig` fields) or a whole config.
        num_envs: how many envs (one worker process each for ``subprocess``).
        backend: a name from :data:`BACKENDS`.
        backend_options: keyword arguments of the backend, e.g. ``{"workers": 4, "address": "auto"}`` for
            ``ray`` (see :class:`~gipo_robot.sim.ray_backend.RayVectorEnv`).

    Raises:
        ValueError: unknown backend (lists the known ones) or bad env arguments.
        ImportError: ``backend="ray"`` without Ray installed (names ``pip install gipo-robot[ray]``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    config = task if isinstance(task, EnvConfig) else EnvConfig(task=task, **env_kwargs)
    return BACKENDS[backend](config, num_envs, **(backend_options or {}))
