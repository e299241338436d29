"""Evaluation on every core: episodes spread over the worker processes of a vector env.

:func:`~gipo_robot.loops.evaluate.evaluate` plays episodes one after another on one env, in the process
that trains; during a fine-tuning run that leaves all cores but one idle while the policy is evaluated
(30 episodes every few iterations, often as many env steps as training itself). :class:`EvalPool` plays
the same episodes on the workers of a :class:`~gipo_robot.sim.vector.SubprocVectorEnv`: the training
run's own (:meth:`EvalPool.borrow`, between two iterations: no extra process, no extra simulator to
build), or its own (:meth:`EvalPool.start`).

- The parent writes the policy once per evaluation as a checkpoint (safetensors + JSON, the format every
  policy type round-trips through, in a temporary folder); each worker loads it at its first episode.
- Episodes go out one seed at a time to whichever worker is free, so long and short episodes balance.
- Each worker plays its episode with :func:`~gipo_robot.loops.evaluate.evaluate` itself (one episode, that
  seed; torch on one thread) on its env, and the parent puts the records back in seed order and
  summarises them as ``evaluate`` does.

So a deterministic policy's per-seed results (success, return, length) are exactly those of ``evaluate`` on
one env built from the same config (tests/loops/test_eval_pool.py checks it bit for bit). The pool
evaluates the policy's mean (``mode``) only: sampled episodes draw from one generator across episodes in
``evaluate``, which no split of the seeds over workers reproduces. A worker that dies or hangs raises
:class:`~gipo_robot.sim.robosuite_env.SimError`.
"""

from __future__ import annotations

import tempfile
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from gipo_robot.loops.evaluate import EVAL_SEED, EvalResult, evaluate, summarize

__all__ = ["EvalPool", "play_episode"]

PLAY = "gipo_robot.loops.eval_pool:play_episode"
"""What a worker runs per episode (by name: the simulator layer imports nothing from the loops)."""

_loaded: dict[str, Any] = {}  # in a worker: the checkpoint path -> the policy loaded from it


def play_episode(env: Any, argument: tuple[str, int, int | None]) -> dict[str, Any]:
    """In a worker: the record of one deterministic episode of the checkpoint at ``path`` from scene ``seed``
    (``argument = (path, seed, execute_steps)``), as :func:`evaluate` on ``env`` makes it."""
    path, seed, execute_steps = argument
    if path not in _loaded:
        import torch

        from gipo_robot.policies import load_policy

        torch.set_num_threads(1)
        _loaded.clear()
        _loaded[path] = load_policy(path)
    result = evaluate(_loaded[path], env, 1, seed=seed, execute_steps=execute_steps, progress=False)
    return result.episodes[0]


class EvalPool:
    """Evaluation episodes on the workers of ``venv`` (see the module doc).

    Args:
        venv: a :class:`~gipo_robot.sim.vector.SubprocVectorEnv` whose workers' envs are built like the
            evaluation env (the same :class:`~gipo_robot.sim.config.EnvConfig`).
        owned: close ``venv`` with the pool (a pool from :meth:`start`); a borrowed one is left open.
    """

    def __init__(self, venv: Any, *, owned: bool = False) -> None:
        self.venv, self.owned = venv, owned

    @classmethod
    def start(cls, env_config: Any, workers: int, *, timeout_s: float = 600.0) -> EvalPool:
        """A pool with ``workers`` processes of its own, each building ``env_config``'s env."""
        from gipo_robot.sim.vector import SubprocVectorEnv

        if workers < 1:
            raise ValueError(f"EvalPool needs workers >= 1, got {workers}")
        return cls(SubprocVectorEnv(env_config, workers, timeout_s=timeout_s), owned=True)

    @classmethod
    def borrow(cls, venv: Any, env_config: Any) -> EvalPool | None:
        """A pool on a training run's vector env, between its iterations (each iteration resets its envs);
        None where it cannot serve: not a subprocess vector env, or its envs are not built like
        ``env_config``'s."""
        from gipo_robot.sim.vector import SubprocVectorEnv

        if isinstance(venv, SubprocVectorEnv) and venv.config == env_config:
            return cls(venv)
        return None

    @property
    def workers(self) -> int:
        return self.venv.num_envs

    def evaluate(
        self, policy: Any, episodes: int, *, seed: int = EVAL_SEED, execute_steps: int | None = None
    ) -> EvalResult:
        """Episodes ``seed .. seed + episodes - 1`` of the deterministic policy; the same result as
        ``evaluate(policy, env, episodes, seed=seed, execute_steps=execute_steps)`` on one env."""
        from gipo_robot.policies import save_policy

        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        venv = self.venv
        conns = venv.connections
        records: dict[int, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="gipo-eval-") as tmp:
            path = str(save_policy(Path(tmp) / "policy", policy))
            seeds = iter(range(seed, seed + episodes))
            busy: dict[int, int] = {}  # worker -> the seed it plays

            def next_episode(i: int) -> None:
                s = next(seeds, None)
                if s is not None:
                    venv.call(i, PLAY, (path, s, execute_steps))
                    busy[i] = s

            for i in range(self.workers):  # one episode per worker; then the next to whoever finishes
                next_episode(i)
            while busy:
                ready = wait([conns[i] for i in busy], timeout=venv.timeout_s)
                if not ready:
                    from gipo_robot.sim.robosuite_env import SimError

                    raise SimError(f"evaluation: no worker finished an episode within {venv.timeout_s} s")
                for conn in ready:
                    i = conns.index(conn)
                    records[busy.pop(i)] = venv.result(i)
                    next_episode(i)
        return summarize([records[s] for s in sorted(records)])

    def close(self) -> None:
        """Stop the workers of a pool from :meth:`start` (idempotent); a borrowed vector env stays open."""
        if self.owned:
            self.venv.close()

    def __enter__(self) -> EvalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
