"""Evaluation on every core: a pool of worker processes, each with its own simulator and a copy of the policy.

:func:`~gipo_robot.loops.evaluate.evaluate` plays episodes one after another on one env, in the process
that trains; during a fine-tuning run that leaves all cores but one idle while the policy is evaluated
(30 episodes every few iterations, often as many env steps as training itself). :class:`EvalPool` plays
the same episodes on ``W`` spawned workers:

- the parent writes the policy once per evaluation as a checkpoint (safetensors + JSON, the format every
  policy type round-trips through, in a temporary folder) and every worker loads it;
- episodes go out one seed at a time to whichever worker is free, so long and short episodes balance;
- each worker plays its episode with :func:`~gipo_robot.loops.evaluate.evaluate` itself (one episode, that
  seed; torch on one thread), and the parent puts the records back in seed order and summarises them as
  ``evaluate`` does.

So a deterministic policy's per-seed results (success, return, length) are exactly those of ``evaluate`` on
one env (tests/loops/test_eval_pool.py checks it bit for bit). The pool evaluates the policy's mean
(``mode``) only: sampled episodes draw from one generator across episodes in ``evaluate``, which no
split of the seeds over workers reproduces.

Workers start once (building an env takes ~1 s) and live until :meth:`EvalPool.close`. A worker that dies
or hangs raises :class:`~gipo_robot.sim.robosuite_env.SimError` after ``timeout_s``.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from gipo_robot.loops.evaluate import EVAL_SEED, EvalResult, evaluate, summarize

__all__ = ["EvalPool"]


def _worker(conn: Connection, env_config: Any) -> None:
    """Serve ("load", checkpoint path) and ("episode", (seed, execute_steps)) until ("close", None)."""
    import torch

    from gipo_robot.policies import load_policy
    from gipo_robot.sim.robosuite_env import RobosuiteEnv
    from gipo_robot.sim.vector import serve

    torch.set_num_threads(1)
    policy: list[Any] = [None]

    def handle(env: Any, command: str, payload: Any) -> Any:
        if command == "load":
            policy[0] = load_policy(payload)
            return None
        if command == "episode":
            seed, execute_steps = payload
            result = evaluate(policy[0], env, 1, seed=seed, execute_steps=execute_steps, progress=False)
            return result.episodes[0]
        raise ValueError(f"unknown command {command!r}")

    serve(conn, lambda: (RobosuiteEnv(env_config), None), handle)


class EvalPool:
    """``workers`` processes that evaluate a policy on the task ``env_config`` describes (see the module doc).

    Args:
        env_config: the :class:`~gipo_robot.sim.config.EnvConfig` every worker builds (e.g. ``env.config``
            of the single env it replaces).
        workers: number of worker processes (the cores to use).
        timeout_s: how long one episode may take before its worker is declared dead.
    """

    def __init__(self, env_config: Any, workers: int, *, timeout_s: float = 600.0) -> None:
        if workers < 1:
            raise ValueError(f"EvalPool needs workers >= 1, got {workers}")
        self.env_config = env_config
        self.timeout_s = timeout_s
        ctx = mp.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, env_config), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        try:
            for i in range(workers):
                self._recv(i)
        except Exception:
            self.close()
            raise

    @property
    def workers(self) -> int:
        return len(self._conns)

    def evaluate(
        self, policy: Any, episodes: int, *, seed: int = EVAL_SEED, execute_steps: int | None = None
    ) -> EvalResult:
        """Episodes ``seed .. seed + episodes - 1`` of the deterministic policy; the same result as
        ``evaluate(policy, env, episodes, seed=seed, execute_steps=execute_steps)`` on one env."""
        from gipo_robot.policies import save_policy

        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        with tempfile.TemporaryDirectory(prefix="gipo-eval-") as tmp:
            path = save_policy(Path(tmp) / "policy", policy)
            for i in range(self.workers):
                self._send(i, ("load", str(path)))
            for i in range(self.workers):
                self._recv(i)
        seeds = iter(range(seed, seed + episodes))
        records: dict[int, dict[str, Any]] = {}
        busy: dict[Connection, int] = {}
        for conn in self._conns:  # one episode per worker to start; then the next to whoever finishes
            self._send_next(conn, seeds, busy, execute_steps)
        while busy:
            ready = wait(list(busy), timeout=self.timeout_s)
            if not ready:
                raise self._error(self._conns.index(next(iter(busy))), f"no reply within {self.timeout_s} s")
            for conn in ready:
                record = self._recv(self._conns.index(conn))
                records[busy.pop(conn)] = record
                self._send_next(conn, seeds, busy, execute_steps)
        return summarize([records[s] for s in sorted(records)])

    def _send_next(self, conn: Connection, seeds: Any, busy: dict, execute_steps: int | None) -> None:
        s = next(seeds, None)
        if s is not None:
            self._send(self._conns.index(conn), ("episode", (s, execute_steps)))
            busy[conn] = s

    def _send(self, i: int, message: tuple) -> None:
        from gipo_robot.sim.robosuite_env import SimError

        try:
            self._conns[i].send(message)
        except (BrokenPipeError, OSError) as err:
            raise SimError(f"evaluation worker {i} died (exit code {self._procs[i].exitcode})") from err

    def _recv(self, i: int) -> Any:
        from gipo_robot.sim.robosuite_env import SimError

        conn = self._conns[i]
        if not conn.poll(self.timeout_s):
            raise self._error(i, f"no reply within {self.timeout_s} s")
        try:
            status, payload = conn.recv()
        except EOFError as err:
            raise SimError(f"evaluation worker {i} died (exit code {self._procs[i].exitcode})") from err
        if status != "ok":
            raise SimError(f"evaluation worker {i} failed: {payload}")
        return payload

    def _error(self, i: int, why: str) -> Exception:
        from gipo_robot.sim.robosuite_env import SimError

        return SimError(f"evaluation worker {i}: {why}")

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        from gipo_robot.sim.vector import stop_workers

        stop_workers(self._conns, self._procs)
        self._conns, self._procs = [], []

    def __enter__(self) -> EvalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
