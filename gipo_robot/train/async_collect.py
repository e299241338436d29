"""Asynchronous rollout collection on Ray: workers keep collecting with the weights they have.

Legend: ``W`` workers, ``N`` envs in all, ``n = N / W`` envs per worker, ``T`` decision steps per batch,
``v`` policy versions (the learner's update count).

Each :class:`RolloutWorker` is a Ray actor owning ``n`` envs and a copy of the policy, rebuilt once from
its JSON config. Weights travel by version through Ray's object store as a state dict of numpy arrays
(never a pickled module); a worker loads new weights only when it is asked to collect with a version it
does not hold, and reports the version it used and the SHA-256 of the weights it ran::

    learner (AsyncCollector)                     worker w
    publish(v): ray.put(state dict) -> ref_v
    launch(w) ------- collect(v, [ref_v]) ---->  load ref_v unless it holds v; collect T steps of n envs
    take(): ray.wait, first ready batch <------  batch tagged v, behaviour log-probs, episodes, sha256
        lag = v_now - v_batch > max_lag: dropped (counted), w relaunched with v_now
        else: the loop stores, replays, updates, publishes v_now + 1 and relaunches w

While the learner updates, the other W - 1 workers go on collecting with the weights they have; that is
where stale data comes from (a batch is typically W - 1 versions old), and why the replay buffer takes
batches in any version order. Keep ``max_lag >= W - 1``: with a smaller one, a learner that keeps up
drops most batches. A worker that dies is replaced by a fresh actor and its in-flight batch is
lost (it was never stored); after ``max_restarts`` replacements the collector gives up.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from gipo_robot.sim.config import EnvConfig
from gipo_robot.sim.ray_backend import connect, ray  # ray via the backend: its ImportError names the extra
from gipo_robot.sim.robosuite_env import SimError
from gipo_robot.sim.vector import SyncVectorEnv
from gipo_robot.train.collect import Collected, collect
from gipo_robot.train.replay import RolloutBatch

__all__ = ["Arrival", "AsyncCollector", "RolloutWorker", "policy_state", "weights_checksum"]


def policy_state(policy: torch.nn.Module) -> dict[str, np.ndarray]:
    """The policy's parameters and buffers as plain arrays, the form weights travel in."""
    return {k: v.detach().cpu().numpy().copy() for k, v in policy.state_dict().items()}


def weights_checksum(state: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of a state dict (equal weights, equal checksum)."""
    h = hashlib.sha256()
    for name in sorted(state):
        a = np.ascontiguousarray(state[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@ray.remote(max_restarts=0)  # a dead worker is replaced by AsyncCollector with a fresh actor
class RolloutWorker:
    """A Ray actor: ``num_envs`` envs and a policy copy collecting whole batches.

    Args:
        env_config: the env every slot builds.
        num_envs: n, envs owned by this worker.
        policy_config: the policy's :class:`PolicyConfig` as JSON.
        critic_features: low-dim features each batch keeps besides the policy's (:func:`collect`).
    """

    def __init__(
        self, env_config: EnvConfig, num_envs: int, policy_config: str, critic_features: tuple[str, ...] = ()
    ) -> None:
        torch.set_num_threads(1)  # one core per worker: W workers must not fight over the cores
        self.venv = SyncVectorEnv(env_config, num_envs)
        self.critic_features = critic_features
        self.policy = GaussianPolicy(PolicyConfig(**json.loads(policy_config))).eval()
        self.version = -1
        self.checksum = ""

    def spec(self) -> Any:
        """The env's :class:`~gipo_robot.hardware.robot.RobotSpec`."""
        return self.venv.robot_spec

    def pid(self) -> int:
        """The worker's process id."""
        return os.getpid()

    def collect(
        self, version: int, weights: list[Any], steps: int, env_seed: int, sample_seed: int
    ) -> dict[str, Any]:
        """Collect one batch with the weights of ``version``.

        Args:
            version: policy version to collect with.
            weights: ``[ref]``, an object ref to that version's state dict; wrapped in a list so Ray does
                not fetch it when the worker already holds the version.
            steps: T, decision steps per env.
            env_seed: env ``i`` of this worker starts from ``env_seed + i``.
            sample_seed: seeds the action sampling.

        Returns:
            ``{"batch": flat name -> array (RolloutBatch.to_tensors), "episodes", "stats", "version",
            "weights_sha256", "pid"}``.
        """
        if version != self.version:
            state = ray.get(weights[0])
            self.policy.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
            self.version, self.checksum = version, weights_checksum(state)
        got = collect(
            self.policy, self.venv, steps, seed=env_seed, version=version,
            generator=torch.Generator().manual_seed(sample_seed), critic_features=self.critic_features,
        )  # fmt: skip
        return {
            "batch": {k: v.numpy() for k, v in got.batch.to_tensors("").items()},
            "episodes": got.episodes,
            "stats": got.stats,
            "version": version,
            "weights_sha256": self.checksum,
            "pid": os.getpid(),
        }


@dataclass
class Arrival:
    """A batch the learner takes.

    Attributes:
        collected: the batch, its episodes and rollout statistics.
        version: the policy version the worker collected with.
        lag: learner version minus ``version`` when the batch was taken.
        worker: index of the worker that collected it.
        weights_sha256: checksum of the weights the worker ran (equal to the published ones: checked).
    """

    collected: Collected
    version: int
    lag: int
    worker: int
    weights_sha256: str


class AsyncCollector:
    """The learner's side of asynchronous collection; see the module docstring.

    Building it starts the workers, publishes ``policy`` as ``version`` and launches every worker.

    Args:
        env_config: the env every worker builds.
        num_envs: N, envs over all workers (a multiple of ``workers``).
        policy: the learner's policy (its config builds the workers' copies).
        version: the policy's version.
        workers: W, rollout workers.
        steps: T, decision steps per env per batch.
        seed: run seed; launch ``j`` seeds its envs with ``seed·100003 + j·n`` and its sampling with
            ``seed·1000003 + j``.
        max_lag: batches more than this many versions old are dropped.
        address: Ray address (see :func:`gipo_robot.sim.ray_backend.connect`).
        max_restarts: dead workers replaced before the collector gives up.
        cpus_per_worker: CPUs each worker reserves from Ray's scheduler.
        timeout_s: longest wait for any batch before the workers are declared hung.
        launches: batches launched before (a resumed run continues the seed sequence).
        critic_features: low-dim features each batch keeps besides the policy's (:func:`collect`).

    Raises:
        ValueError: ``num_envs`` not a multiple of ``workers``.
        SimError: the workers could not be placed or built.
    """

    def __init__(
        self,
        env_config: EnvConfig,
        num_envs: int,
        policy: GaussianPolicy,
        version: int,
        *,
        workers: int,
        steps: int,
        seed: int,
        max_lag: int,
        address: str | None = None,
        max_restarts: int = 3,
        cpus_per_worker: float = 1.0,
        timeout_s: float = 600.0,
        launches: int = 0,
        critic_features: tuple[str, ...] = (),
    ) -> None:
        if workers < 1 or num_envs % workers:
            raise ValueError(f"num_envs ({num_envs}) must be a positive multiple of workers ({workers})")
        self.env_config, self.envs_per_worker = env_config, num_envs // workers
        self.steps, self.seed = steps, seed
        self.max_lag, self.max_restarts = max_lag, max_restarts
        self.cpus_per_worker, self.timeout_s = cpus_per_worker, timeout_s
        self.num_workers = workers
        self.restarts = 0
        self.dropped = 0
        self.dropped_steps = 0
        self.launches = launches
        self.version = version
        self._weights: Any = None
        self._checksums: dict[int, str] = {}
        self._in_flight: dict[Any, int] = {}  # object ref of a batch -> worker
        self._policy_config = json.dumps(asdict(policy.config))
        self.critic_features = tuple(critic_features)
        connect(address, num_cpus=max(os.cpu_count() or 1, workers * cpus_per_worker))
        self.actors: list[Any] = [self._new_actor() for _ in range(workers)]
        try:
            ray.get([a.pid.remote() for a in self.actors], timeout=self.timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise SimError(
                f"{self.num_workers} Ray rollout workers did not start within {self.timeout_s} s (each needs "
                f"{self.cpus_per_worker} CPUs; the cluster has {ray.cluster_resources().get('CPU', 0)})"
            ) from None
        except ray.exceptions.RayActorError as err:
            self.close()
            raise SimError(f"a Ray rollout worker failed to start: {err}") from None
        self.publish(policy, version)
        for w in range(self.num_workers):
            self.launch(w)

    def _new_actor(self) -> Any:
        return RolloutWorker.options(num_cpus=self.cpus_per_worker).remote(
            self.env_config, self.envs_per_worker, self._policy_config, self.critic_features
        )

    def publish(self, policy: GaussianPolicy, version: int) -> None:
        """Put ``policy``'s weights in the object store as ``version``; later launches use them."""
        state = policy_state(policy)
        self._weights = ray.put(state)
        self.version = version
        self._checksums[version] = weights_checksum(state)
        for old in [v for v in self._checksums if v < version - self.max_lag]:
            del self._checksums[old]

    def launch(self, w: int) -> None:
        """Send worker ``w`` to collect a batch with the latest published version."""
        j = self.launches
        ref = self.actors[w].collect.remote(
            self.version, [self._weights], self.steps,
            self.seed * 100_003 + j * self.envs_per_worker, self.seed * 1_000_003 + j,
        )  # fmt: skip
        self._in_flight[ref] = w
        self.launches += 1

    def take(self) -> Arrival:
        """The first batch ready that is at most ``max_lag`` versions old; older ones are dropped and their
        workers relaunched, dead workers replaced and relaunched.

        Raises:
            SimError: no batch within ``timeout_s``, a worker's error, or too many dead workers.
            RuntimeError: a worker ran other weights than the ones published for its version.
        """
        if not self._in_flight:
            raise RuntimeError("no rollout batch in flight: launch a worker before take()")
        while True:
            ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=self.timeout_s)
            if not ready:
                raise SimError(
                    f"no rollout batch from {self.num_workers} Ray workers within {self.timeout_s} s"
                )
            w = self._in_flight.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                self._replace(w)
                self.launch(w)
                continue
            except ray.exceptions.RayTaskError as err:
                raise SimError(f"Ray rollout worker {w} failed: {err}") from None
            lag = self.version - out["version"]
            if lag > self.max_lag:
                self.dropped += 1
                self.dropped_steps += self.steps * self.envs_per_worker
                self.launch(w)
                continue
            if out["weights_sha256"] != self._checksums[out["version"]]:
                raise RuntimeError(
                    f"Ray rollout worker {w} collected with weights {out['weights_sha256'][:12]} for version "
                    f"{out['version']}, published {self._checksums[out['version']][:12]}"
                )
            tensors = {k: torch.from_numpy(np.array(v)) for k, v in out["batch"].items()}
            collected = Collected(RolloutBatch.from_tensors(tensors, ""), out["episodes"], out["stats"])
            return Arrival(collected, out["version"], lag, w, out["weights_sha256"])

    def _replace(self, w: int) -> None:
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise SimError(
                f"Ray rollout workers died {self.restarts} times, more than max_restarts={self.max_restarts}"
            )
        ray.kill(self.actors[w], no_restart=True)
        self.actors[w] = self._new_actor()

    def worker_pids(self) -> list[int]:
        """Process id of every worker, in worker order."""
        return ray.get([a.pid.remote() for a in self.actors], timeout=self.timeout_s)

    def close(self) -> None:
        """Stop every worker; in-flight batches are discarded."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors, self._in_flight = [], {}
