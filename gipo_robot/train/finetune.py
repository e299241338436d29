"""Fine-tune a pretrained Gaussian policy with GIPO (or a baseline objective) on few, stale rollouts.

One loop, read top to bottom (``finetune``)::

    for each iteration:
        collect   T decision steps in N parallel envs with the current policy (version v)
        store     every step into the episode store (source "rollout", behaviour logp, policy version)
        replay    add the batch to the buffer of the last K batches, evict the oldest
        advantages   recompute V and GAE (or V-trace) for every batch with the current critic
        update    critic, then policy: U minibatch steps sampled across the buffer with the objective
        evaluate  every `eval_every` iterations, deterministic episodes on held-out seeds
        log       CSV + TensorBoard; checkpoint (policy, critic, optimisers, buffer, RNG) for resume

Decisions worth knowing:
- The update-to-data ratio does not depend on K: each iteration makes ``epochs × (fresh samples) /
  minibatch_size`` gradient steps, drawn from the whole buffer. A larger K spreads the same number of
  updates over staler data; it does not add updates.
- A policy predicting chunks of H actions executes the first action of each chunk and is queried again
  (receding horizon); the ratio covers the executed step only (``exec_mask``). Executing whole chunks in
  lockstep vector envs would leak a chunk across an auto-reset.
- Each iteration starts every env from a fresh reset (seeded by the run seed and the iteration), and the
  episodes still running at its end are cut (``truncated``, bootstrapped with V). So an iteration boundary
  holds no simulator state, and resuming from a checkpoint replays exactly the same run.
- An iteration's episodes reach the store only once its whole batch is collected. If a Ray worker dies
  mid-collection (``backend="ray"``), the partial batch is dropped, the sampling generator rewound, and
  the iteration collected again on the replaced worker: the run goes on (``worker_restarts`` counts it)
  and, in simulation, equals a run without the failure.
- ``async_collection=True`` (Ray): workers hold a policy copy and keep collecting with the last weights
  they received while the learner updates (:mod:`gipo_robot.train.async_collect`). An iteration then
  consumes whichever worker's batch is ready first (``N / workers`` envs × T steps), so its data is
  ``batch_lag`` versions old; batches more than ``max_lag`` versions old are dropped. This is the stale
  data GIPO is built for; the staleness histogram shows the real lag.

Shapes: ``T`` decision steps per iteration, ``N`` envs, ``H`` chunk, ``A`` action size, ``B`` minibatch.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from gipo_robot.advantages import gae, normalize, vtrace
from gipo_robot.objectives import at_level, get_objective
from gipo_robot.policies.checkpoint import check_spec, load_critic, load_policy, save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.evaluate import EVAL_SEED, evaluate
from gipo_robot.policies.gaussian import GaussianPolicy, _soft_bound_inverse
from gipo_robot.train.replay import ReplayBuffer, RolloutBatch

__all__ = ["Collected", "FinetuneConfig", "FinetuneError", "collect", "finetune", "store_episodes"]

LOGGER = logging.getLogger(__name__)


class FinetuneError(RuntimeError):
    """Fine-tuning cannot go on (repeated non-finite updates, a checkpoint that does not fit, ...)."""


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run, saved as ``config.json`` next to it.

    Attributes:
        task: simulated task (Lift, Can, Square, Stack).
        objective: name in :data:`gipo_robot.objectives.OBJECTIVES` (gipo, ppo_clip, sapo, no_clip, cispo).
        objective_params: keyword parameters of the objective (e.g. ``{"sigma": 0.5}``); {} = its defaults.
        ratio_level: importance ratio per ``chunk``, chunk ``step`` or action ``dim`` (see ``at_level``).
        replay_size: K, rollout batches (policy versions) kept in the replay buffer; 1 = near on-policy.
        env_steps: total environment steps to collect.
        num_envs: N parallel environments.
        steps_per_env: T, decision steps per env per iteration (an iteration collects N·T env steps).
        backend: vector env backend, a name in :data:`gipo_robot.sim.vector.BACKENDS` (``subprocess``,
            ``sync`` or ``ray``).
        workers: W, Ray rollout workers (``backend="ray"`` only), each owning ``num_envs / W`` envs.
        ray_address: Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None starts Ray on this
            machine. ``backend="ray"`` only.
        async_collection: workers keep collecting with the last weights they have while the learner
            updates (``backend="ray"``; ``num_envs`` must be a multiple of ``workers``). An iteration
            consumes one worker's batch.
        max_lag: asynchronous collection drops a batch collected more than this many policy versions
            before the learner's current one (batches are typically ``workers - 1`` versions old: keep it
            at least that).
        max_worker_restarts: Ray workers that may die (and be replaced) over the run before it stops.
        horizon: episode length limit in env steps; None = the task's default.
        epochs: passes worth of fresh data per iteration (sets the update-to-data ratio).
        minibatch_size: samples per gradient step.
        policy_lr: policy learning rate (Adam).
        critic_lr: critic learning rate (Adam).
        gamma: discount per decision step.
        gae_lambda: GAE λ.
        advantage: ``gae`` (current critic, no correction for staleness) or ``vtrace``.
        critic_warmup_iters: iterations that update only the critic before the policy moves.
        bc_coef: weight of a BC NLL term toward the demonstrations in ``demo_store`` (0 = off).
        log_std_floor: lower bound on the policy's log-std (normalised units) after every update; None = off.
        init_log_std: reset the (state-independent) log-std to this value before fine-tuning: the exploration
            noise of the rollouts (BC's own is too wide: its stochastic rollouts fail far more often than
            its mean); None keeps the pretrained one.
        grad_clip: maximum gradient norm (policy and critic).
        target_kl: stop an iteration's policy updates once approx-KL exceeds this; None = off.
        max_bad_updates: consecutive non-finite updates tolerated before the run stops with an error.
        eval_every: evaluate every this many iterations (and after the last).
        eval_episodes: episodes per evaluation.
        seed: seeds envs, sampling and minibatch order.
    """

    task: str = "Lift"
    objective: str = "gipo"
    objective_params: dict[str, Any] = field(default_factory=dict)
    ratio_level: str = "step"
    replay_size: int = 4
    env_steps: int = 20_000
    num_envs: int = 2
    steps_per_env: int = 1000
    backend: str = "subprocess"
    workers: int = 1
    ray_address: str | None = None
    async_collection: bool = False
    max_lag: int = 8
    max_worker_restarts: int = 3
    horizon: int | None = None
    epochs: int = 2
    minibatch_size: int = 256
    policy_lr: float = 3e-5
    critic_lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    advantage: str = "gae"
    critic_warmup_iters: int = 1
    bc_coef: float = 0.0
    log_std_floor: float | None = -3.0
    init_log_std: float | None = -2.5
    grad_clip: float = 1.0
    target_kl: float | None = None
    max_bad_updates: int = 10
    eval_every: int = 2
    eval_episodes: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        get_objective(self.objective)  # KeyError naming the known objectives
        if self.ratio_level not in ("chunk", "step", "dim"):
            raise ValueError(
                f"FinetuneConfig.ratio_level must be chunk, step or dim, got {self.ratio_level!r}"
            )
        if self.advantage not in ("gae", "vtrace"):
            raise ValueError(f"FinetuneConfig.advantage must be gae or vtrace, got {self.advantage!r}")
        for name in ("replay_size", "env_steps", "num_envs", "steps_per_env", "epochs", "minibatch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "eval_episodes", "max_bad_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.policy_lr <= 0 or self.critic_lr <= 0 or self.grad_clip <= 0:
            raise ValueError("FinetuneConfig.policy_lr, critic_lr and grad_clip must be positive")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("FinetuneConfig needs 0 < gamma <= 1 and 0 <= gae_lambda <= 1")
        if self.bc_coef < 0 or self.critic_warmup_iters < 0:
            raise ValueError("FinetuneConfig.bc_coef and critic_warmup_iters must be >= 0")
        self._check_backend()

    def _check_backend(self) -> None:
        from gipo_robot.sim.vector import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(
                f"FinetuneConfig.backend must be one of {', '.join(sorted(BACKENDS))}, got {self.backend!r}"
            )
        for name in ("max_lag", "max_worker_restarts"):
            if getattr(self, name) < 0:
                raise ValueError(f"FinetuneConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.workers <= self.num_envs:
            raise ValueError(
                f"FinetuneConfig.workers must be between 1 and num_envs ({self.num_envs}), got {self.workers}"
            )
        if self.backend != "ray":
            for name, default in (("workers", 1), ("ray_address", None), ("async_collection", False)):
                if getattr(self, name) != default:
                    raise ValueError(
                        f"FinetuneConfig.{name} needs backend='ray' (got backend={self.backend!r})"
                    )
        if self.async_collection and self.num_envs % self.workers:
            raise ValueError(
                f"FinetuneConfig.num_envs ({self.num_envs}) must be a multiple of workers ({self.workers}) "
                "with async_collection (every worker's batch has the same shape)"
            )

    @property
    def batch_envs(self) -> int:
        """Envs in one iteration's batch: all N, or one worker's ``N / workers`` with async collection."""
        return self.num_envs // self.workers if self.async_collection else self.num_envs

    @property
    def iterations(self) -> int:
        """Iterations needed to collect ``env_steps``."""
        return math.ceil(self.env_steps / (self.batch_envs * self.steps_per_env))

    @property
    def updates_per_iter(self) -> int:
        """Gradient steps per iteration (policy and critic each)."""
        return max(1, round(self.epochs * self.batch_envs * self.steps_per_env / self.minibatch_size))


# ------------------------------------------------------------------------------------------------------------
# Rollout collection
# ------------------------------------------------------------------------------------------------------------


def _to_torch(obs: dict[str, np.ndarray], keys: list[str]) -> dict[str, Tensor]:
    return {k: torch.as_tensor(np.asarray(obs[k]), dtype=torch.float32) for k in keys}


@dataclass
class Collected:
    """What one :func:`collect` call gathered.

    Attributes:
        batch: the iteration's ``(T, N)`` rollout batch for the replay buffer.
        episodes: every episode that ended or was cut, in the order they ended: ``{"steps": {key: (L, ...)
            array}, "success": bool, "cut_by_iteration": bool}``; written to the store by
            :func:`store_episodes` once the whole batch exists.
        stats: rollout statistics (episodes finished, their success rate and mean return).
    """

    batch: RolloutBatch
    episodes: list[dict[str, Any]]
    stats: dict[str, float]


def store_episodes(store: Any, episodes: list[dict[str, Any]], *, task: str, version: int) -> None:
    """Append collected episodes to an EpisodeStore (source ``rollout``, tagged with the policy version)."""
    for episode in episodes:
        store.append_episode(
            episode["steps"],
            source="rollout",
            success=episode["success"],
            task=task,
            policy_version=version,
            extra={"cut_by_iteration": episode["cut_by_iteration"]},
        )


@torch.no_grad()
def collect(
    policy: GaussianPolicy, venv: Any, steps: int, *, seed: int, version: int, generator: torch.Generator
) -> Collected:
    """Run ``steps`` decision steps in every env of ``venv`` with ``policy``; see the module docstring.

    Nothing is written anywhere: a collection that fails half-way (a lost worker) leaves no trace, and the
    caller stores the episodes only once the whole batch is there.

    Args:
        policy: the behaviour policy (version ``version``).
        venv: a :class:`~gipo_robot.sim.vector.VectorEnv` with N envs, reset here with ``seed``.
        steps: T, decision steps per env.
        seed: env ``i`` starts from ``seed + i``.
        version: policy version recorded with every step.
        generator: draws the sampled actions.
    """
    keys = sorted(policy.config.low_dim)
    n, h = venv.num_envs, policy.config.chunk
    obs_np, _ = venv.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in ("actions", "logp", "rewards", "terminated", "truncated")}
    obs_seq, next_seq = [], []
    # One in-memory episode per env, moved to `episodes` when it ends.
    pending: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    episodes: list[dict[str, Any]] = []
    episode_return = np.zeros(n)
    finished: list[tuple[bool, float]] = []
    success_so_far = np.zeros(n, dtype=bool)
    for t in range(steps):
        obs = _to_torch(obs_np, keys)
        actions, _ = policy.sample(obs, generator)
        logp = policy.log_prob_per_dim(obs, actions)
        executed = policy.clip(actions[:, 0]).numpy()
        next_np, reward, terminated, truncated, infos = venv.step(executed)
        last = t == steps - 1
        real_next = {k: next_np[k].copy() for k in keys}
        for i, info in enumerate(infos):
            if "final_obs" in info:
                for k in keys:
                    real_next[k][i] = info["final_obs"][k]
            success_so_far[i] |= bool(info.get("final_info", info).get("success", False))
        cut = last & ~(terminated | truncated)
        for i in range(n):
            episode_return[i] += reward[i]
            step = {f"obs.{k}": obs_np[k][i] for k in keys}
            step.update(
                action=executed[i],
                reward=reward[i],
                terminated=terminated[i],
                truncated=truncated[i] or cut[i],
                logp=float(logp[i, 0].sum()),
                policy_version=version,
            )
            pending[i].append(step)
            if terminated[i] or truncated[i] or cut[i]:
                if not cut[i]:
                    finished.append((bool(success_so_far[i]), float(episode_return[i])))
                episodes.append({
                    "steps": {key: np.stack([row[key] for row in pending[i]]) for key in step},
                    "success": bool(success_so_far[i]),
                    "cut_by_iteration": bool(cut[i]),
                })  # fmt: skip
                pending[i] = []
                episode_return[i], success_so_far[i] = 0.0, False
        obs_seq.append(obs)
        next_seq.append(_to_torch(real_next, keys))
        rows["actions"].append(actions)
        rows["logp"].append(logp)
        rows["rewards"].append(torch.as_tensor(reward, dtype=torch.float32))
        rows["terminated"].append(torch.as_tensor(terminated))
        rows["truncated"].append(torch.as_tensor(truncated | cut))
        obs_np = next_np
    exec_mask = torch.zeros(steps, n, h, dtype=torch.bool)
    exec_mask[..., 0] = True
    batch = RolloutBatch(
        obs={k: torch.stack([o[k] for o in obs_seq]) for k in keys},
        next_obs={k: torch.stack([o[k] for o in next_seq]) for k in keys},
        actions=torch.stack(rows["actions"]),
        logp_behavior=torch.stack(rows["logp"]),
        exec_mask=exec_mask,
        rewards=torch.stack(rows["rewards"]),
        terminated=torch.stack(rows["terminated"]),
        truncated=torch.stack(rows["truncated"]),
        version=version,
    )
    stats = {
        "rollout_episodes": len(finished),
        "rollout_success": float(np.mean([s for s, _ in finished])) if finished else float("nan"),
        "rollout_return": float(np.mean([r for _, r in finished])) if finished else float("nan"),
    }
    return Collected(batch, episodes, stats)


# ------------------------------------------------------------------------------------------------------------
# Checkpoint of the whole training state (safetensors + JSON, never pickle)
# ------------------------------------------------------------------------------------------------------------


def _optimizer_tensors(optim: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, Tensor], dict]:
    state = optim.state_dict()
    tensors, scalars = {}, {}
    for idx, s in state["state"].items():
        for name, value in s.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{idx}.{name}"] = value.contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _load_optimizer(
    optim: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict, prefix: str
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optim.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_trainer_state(
    path: Path,
    *,
    policy: GaussianPolicy,
    critic: Critic,
    optims: dict[str, torch.optim.Optimizer],
    replay: ReplayBuffer,
    generator: torch.Generator,
    progress: dict[str, Any],
    provenance: dict[str, Any],
) -> None:
    """Write ``path/``: a policy checkpoint (with critic) and ``trainer_state.safetensors``/``.json``."""
    save_policy(path, policy, critic=critic, provenance=provenance)
    tensors = {f"replay.{k}": v for k, v in replay.to_tensors().items()}
    tensors["rng.torch"] = generator.get_state()
    meta: dict[str, Any] = {"progress": progress, "optimizers": {}}
    for name, optim in optims.items():
        t, m = _optimizer_tensors(optim, f"optim.{name}")
        tensors.update(t)
        meta["optimizers"][name] = m
    tmp = path / ".trainer_state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(path / "trainer_state.safetensors")
    tmp = path / ".trainer_state.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(path / "trainer_state.json")


# ------------------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------------------


def _advantages(
    batch: RolloutBatch, policy: GaussianPolicy, critic: Critic, config: FinetuneConfig
) -> tuple[Tensor, Tensor]:
    """Advantages and value targets of one batch under the current critic (and policy, for V-trace)."""
    t, n = batch.shape
    with torch.no_grad():
        values = critic(batch.flat("obs")).view(t, n)
        next_values = critic(batch.flat("next_obs")).view(t, n)
        if config.advantage == "gae":
            adv, ret = gae(
                batch.rewards, values, next_values, batch.terminated, batch.truncated,
                gamma=config.gamma, lam=config.gae_lambda,
            )  # fmt: skip
            return adv, ret
        logp = policy.log_prob_per_dim(batch.flat("obs"), batch.flat("actions")).view_as(batch.logp_behavior)
        log_rhos = ((logp - batch.logp_behavior) * batch.exec_mask[..., None]).sum(dim=(2, 3))
        adv, ret = vtrace(
            log_rhos, batch.rewards, values, next_values, batch.terminated, batch.truncated,
            gamma=config.gamma, lam=config.gae_lambda,
        )  # fmt: skip
        return adv, ret


def _set_log_std(policy: GaussianPolicy, value: float) -> None:
    if policy.config.state_dependent_std:
        raise FinetuneError("init_log_std needs a state-independent log-std (state_dependent_std=False)")
    low, high = policy.config.log_std_min, policy.config.log_std_max
    if not low < value < high:
        raise FinetuneError(f"init_log_std {value} is outside the policy's log-std bounds ({low}, {high})")
    with torch.no_grad():
        policy.raw_log_std.fill_(_soft_bound_inverse(value, low, high))


def _floor_log_std(policy: GaussianPolicy, floor: float | None) -> None:
    if floor is None or policy.config.state_dependent_std:
        return
    low, high = policy.config.log_std_min, policy.config.log_std_max
    if floor <= low:
        return
    with torch.no_grad():
        policy.raw_log_std.clamp_(min=_soft_bound_inverse(min(floor, high - 1e-6), low, high))


def finetune(
    config: FinetuneConfig,
    policy_path: str | Path,
    out: str | Path,
    *,
    demo_store: Any = None,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tune the policy at ``policy_path``; write the run to ``out``; return one record per iteration.

    ``out`` receives ``config.json``, ``metrics.csv``, TensorBoard events (``tb/``), the rollout store
    (``rollouts.zarr``), ``checkpoint/`` (latest state, resumable) and ``learning_curve.png``.

    Args:
        config: the run's settings.
        policy_path: a policy checkpoint (e.g. from ``gipo-robot train-bc``).
        out: run directory.
        demo_store: an open EpisodeStore of demonstrations, needed when ``config.bc_coef > 0``.
        resume: continue the run in ``out`` from its last checkpoint (same config required).
        stop_after: stop (resumably) once this many iterations are done; None runs to ``config.env_steps``.
        progress: show a progress bar on stderr.
        on_iteration: called with each iteration's record.

    Raises:
        FinetuneError: non-finite updates ``max_bad_updates`` times in a row, or a resume that does not fit.
        CheckpointError: the policy does not fit the task's observation/action spec.
    """
    from tqdm import tqdm

    from gipo_robot.datasets import EpisodeStore
    from gipo_robot.datasets.schema import step_schema
    from gipo_robot.sim import EnvConfig, make_env, make_vector_env

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    if resume:
        # Fields a run saved before they existed take their defaults (the behaviour it ran with).
        defaults = json.loads(json.dumps(asdict(FinetuneConfig())))
        saved = {**defaults, **json.loads((out / "config.json").read_text())}
        if saved != json.loads(json.dumps(asdict(config))):
            raise FinetuneError(
                f"{out / 'config.json'} differs from the given config; resume needs the same one"
            )
        policy_path = ckpt
    else:
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2))

    # --- set-up: envs, policy, critic, optimisers, replay, store ----------------------------------------
    venv = None  # lockstep envs; asynchronous collection has its own workers (`collector`, below)
    if not config.async_collection:
        venv = make_vector_env(config.task, config.num_envs, backend=config.backend, horizon=config.horizon,
                               backend_options=_backend_options(config))  # fmt: skip
    eval_env = make_env(config.task, horizon=config.horizon)
    spec = eval_env.sim_spec
    policy = load_policy(policy_path, low_dim={k: list(v) for k, v in spec.obs_shapes.items()})
    check_spec(policy.config, action_dim=spec.action_dim, where=f"policy at {policy_path}")
    if config.init_log_std is not None and not resume:
        _set_log_std(policy, config.init_log_std)
    if resume:
        critic = load_critic(ckpt)
    else:  # separate weights, initialised from the policy's encoder (its normalisation and BC features)
        torch.manual_seed(config.seed)  # the critic's head: seeded, so a run is reproducible
        critic = Critic(policy.config)
        critic.encoder.load_state_dict(policy.encoder.state_dict())
    objective = get_objective(config.objective)
    policy_optim = torch.optim.Adam(policy.parameters(), lr=config.policy_lr)
    critic_optim = torch.optim.Adam(critic.parameters(), lr=config.critic_lr)
    replay = ReplayBuffer(config.replay_size)
    gen = torch.Generator().manual_seed(config.seed)
    store_path = out / "rollouts.zarr"
    history: list[dict[str, Any]] = []
    start_iter, env_steps, launches = 0, 0, 0
    if resume:
        tensors = load_file(str(ckpt / "trainer_state.safetensors"))
        meta = json.loads((ckpt / "trainer_state.json").read_text())
        replay = ReplayBuffer.from_tensors({k[7:]: v for k, v in tensors.items() if k.startswith("replay.")})
        gen.set_state(tensors["rng.torch"])
        _load_optimizer(policy_optim, tensors, meta["optimizers"]["policy"], "optim.policy")
        _load_optimizer(critic_optim, tensors, meta["optimizers"]["critic"], "optim.critic")
        start_iter, env_steps = meta["progress"]["iteration"], meta["progress"]["env_steps"]
        launches = meta["progress"].get("launches", 0)
        history = _read_history(out / "metrics.csv")[:start_iter]
        store = EpisodeStore.open(store_path, "a")
    else:
        store = EpisodeStore.create(store_path, step_schema(spec), fps=spec.control_hz, overwrite=True)
    demo_data = None
    if config.bc_coef > 0:
        if demo_store is None:
            raise FinetuneError("bc_coef > 0 needs demo_store (the demonstrations to regularise toward)")
        from gipo_robot.policies.bc import BCConfig, load_bc_data

        demo_data, _ = load_bc_data(
            demo_store,
            BCConfig(chunk=policy.config.chunk, obs_keys=[f"obs.{k}" for k in policy.config.low_dim]),
        )
    writer = _tensorboard(out / "tb")
    bad_updates = 0
    collector = None
    if config.async_collection:  # workers start collecting with the current weights (version start_iter)
        from gipo_robot.train.async_collect import AsyncCollector

        collector = AsyncCollector(
            EnvConfig(task=config.task, horizon=config.horizon), config.num_envs, policy, start_iter,
            workers=config.workers, steps=config.steps_per_env, seed=config.seed, max_lag=config.max_lag,
            address=config.ray_address, max_restarts=config.max_worker_restarts, launches=launches,
        )  # fmt: skip
    t_end = time.perf_counter()

    bar = tqdm(total=config.env_steps, initial=env_steps, desc=f"finetune {config.objective}", unit="step",
               disable=not progress)  # fmt: skip
    try:
        for iteration in range(start_iter, config.iterations):
            if stop_after is not None and iteration >= stop_after:
                break
            version = iteration
            record: dict[str, Any] = {"iteration": iteration + 1}

            # --- collect + store (episodes reach the store only once the whole batch is there) -----------
            t0 = time.perf_counter()
            if collector is not None:  # asynchronous: the first batch ready, from whichever worker
                arrival = collector.take()
                got = arrival.collected
                record.update(batch_lag=arrival.lag, dropped_stale_batches=collector.dropped,
                              dropped_env_steps=collector.dropped_steps)  # fmt: skip
            else:
                got = _collect_iteration(policy, venv, config, iteration, gen)
            batch = got.batch
            store_episodes(store, got.episodes, task=config.task, version=batch.version)
            collect_s = time.perf_counter() - t0
            env_steps += len(batch)
            # With asynchronous collection, collecting overlaps the update: throughput over the iteration.
            wall_s = time.perf_counter() - t_end if collector is not None else collect_s
            record.update(got.stats, env_steps=env_steps, env_steps_per_s=len(batch) / wall_s,
                          collect_s=collect_s, worker_restarts=(collector or venv).restarts)  # fmt: skip

            # --- replay (asynchronous batches arrive in any version order) --------------------------------
            replay.add(batch, any_order=collector is not None)
            staleness = replay.staleness(version)
            record["staleness"] = json.dumps(staleness)
            record["mean_staleness"] = sum(a * c for a, c in staleness.items()) / max(1, len(replay))

            # --- advantages under the current critic ------------------------------------------------------
            t0 = time.perf_counter()
            advs, rets = zip(*(_advantages(b, policy, critic, config) for b in replay.batches), strict=True)
            data = {
                "obs": {
                    k: torch.cat([b.flat("obs")[k] for b in replay.batches]) for k in policy.config.low_dim
                },
                "actions": torch.cat([b.flat("actions") for b in replay.batches]),
                "logp_b": torch.cat([b.flat("logp_behavior") for b in replay.batches]),
                "mask": torch.cat([b.flat("exec_mask") for b in replay.batches]),
                "adv": torch.cat([a.reshape(-1) for a in advs]),
                "ret": torch.cat([r.reshape(-1) for r in rets]),
            }

            # --- critic update ---------------------------------------------------------------------------
            value_losses = []
            for idx in replay.minibatches(config.minibatch_size, config.updates_per_iter, gen):
                obs = {k: v[idx] for k, v in data["obs"].items()}
                loss = torch.nn.functional.mse_loss(critic(obs), data["ret"][idx])
                critic_optim.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), config.grad_clip)
                critic_optim.step()
                value_losses.append(loss.item())
            record["value_loss"] = float(np.mean(value_losses))

            # --- policy update ---------------------------------------------------------------------------
            stats_acc: dict[str, list[float]] = {}
            skipped = 0
            if iteration >= config.critic_warmup_iters:
                for idx in replay.minibatches(config.minibatch_size, config.updates_per_iter, gen):
                    obs = {k: v[idx] for k, v in data["obs"].items()}
                    logp = policy.log_prob_per_dim(obs, data["actions"][idx])
                    adv = normalize(data["adv"][idx])
                    loss, stats = objective(
                        *at_level(logp, data["logp_b"][idx], adv, data["mask"][idx], config.ratio_level),
                        **config.objective_params,
                    )
                    if demo_data is not None:
                        rows = torch.randint(0, len(demo_data), (config.minibatch_size,), generator=gen)
                        demo = demo_data.subset(rows)
                        bc = -(policy.log_prob_per_dim(demo.obs, demo.actions).sum(-1) * demo.mask).sum()
                        bc = bc / demo.mask.sum().clamp(min=1)
                        loss = loss + config.bc_coef * bc
                        stats["bc_nll"] = bc.detach()
                    policy_optim.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
                    if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                        # --- NaN guard: skip, count, stop after too many in a row ----------------------
                        policy_optim.zero_grad(set_to_none=True)
                        skipped += 1
                        bad_updates += 1
                        if bad_updates >= config.max_bad_updates:
                            raise FinetuneError(
                                f"{bad_updates} non-finite updates in a row at iteration {iteration + 1} "
                                f"(loss {loss.item()}, grad norm {grad_norm.item()}); lower policy_lr or "
                                "check the behaviour log-probs in the replay"
                            )
                        continue
                    bad_updates = 0
                    policy_optim.step()
                    _floor_log_std(policy, config.log_std_floor)
                    stats["loss"], stats["grad_norm"] = loss.detach(), grad_norm
                    for k, v in stats.items():
                        stats_acc.setdefault(k, []).append(float(v))
                    if config.target_kl is not None and float(stats["approx_kl"]) > config.target_kl:
                        record["kl_early_stop"] = True
                        break
            record.update({k: float(np.mean(v)) for k, v in stats_acc.items()})
            record["skipped_updates"] = skipped
            record["update_s"] = time.perf_counter() - t0
            if collector is not None:  # publish version + 1; the worker whose batch this was goes on with it
                collector.publish(policy, version + 1)
                collector.launch(arrival.worker)
            with torch.no_grad():
                record["log_std_mean"] = float(policy.distribution_params(
                    {k: v[:1] for k, v in data["obs"].items()})[1].mean())  # fmt: skip

            # --- evaluate ----------------------------------------------------------------------------------
            last = iteration == config.iterations - 1
            if (iteration + 1) % config.eval_every == 0 or last:
                result = evaluate(policy, eval_env, config.eval_episodes, seed=EVAL_SEED, execute_steps=1,
                                  progress=False)  # fmt: skip
                record["eval_success"] = result.success_rate
                record["eval_return"] = result.mean_return
                record["eval_length"] = result.mean_length

            # --- log + checkpoint --------------------------------------------------------------------------
            history.append(record)
            _write_history(out / "metrics.csv", history)
            if writer is not None:
                for k, v in record.items():
                    if isinstance(v, int | float) and k != "iteration":
                        writer.add_scalar(k, v, env_steps)
            save_trainer_state(
                ckpt, policy=policy, critic=critic, optims={"policy": policy_optim, "critic": critic_optim},
                replay=replay, generator=gen,
                progress={"iteration": iteration + 1, "env_steps": env_steps,
                          "launches": collector.launches if collector is not None else 0},
                provenance={"trainer": "finetune", "config": asdict(config), "base_policy": str(policy_path)},
            )  # fmt: skip
            bar.update(len(batch))
            bar.set_postfix(success=f"{record.get('eval_success', record['rollout_success']):.2f}",
                            sps=f"{record['env_steps_per_s']:.0f}")  # fmt: skip
            if on_iteration is not None:
                on_iteration(record)
            t_end = time.perf_counter()
    finally:
        bar.close()
        for sampler in (venv, collector):
            if sampler is not None:
                sampler.close()
        eval_env.close()
        if writer:
            writer.close()
    from gipo_robot.train.plot import plot_runs

    plot_runs([out], out / "learning_curve.png")
    return history


def _backend_options(config: FinetuneConfig) -> dict[str, Any]:
    """Keyword arguments of the vector env backend named in ``config``."""
    if config.backend != "ray":
        return {}
    return {
        "workers": config.workers,
        "address": config.ray_address,
        "max_restarts": config.max_worker_restarts,
    }


def _collect_iteration(
    policy: GaussianPolicy, venv: Any, config: FinetuneConfig, iteration: int, gen: torch.Generator
) -> Collected:
    """One iteration's batch in lockstep. A lost worker (the backend has replaced it) drops the partial batch;
    the iteration is collected again from the same generator state, so it equals a run without the failure.
    The backend gives up (SimError) after ``max_worker_restarts``."""
    from gipo_robot.sim.vector import WorkerLostError

    state = gen.get_state()
    while True:
        try:
            return collect(
                policy, venv, config.steps_per_env, seed=config.seed * 100_003 + iteration * config.num_envs,
                version=iteration, generator=gen,
            )  # fmt: skip
        except WorkerLostError as err:
            LOGGER.warning("iteration %d: %s", iteration + 1, err)
            gen.set_state(state)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    tmp.replace(path)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        rec: dict[str, Any] = {}
        for k, v in r.items():
            if v == "":
                continue
            try:
                rec[k] = int(v) if v.lstrip("-").isdigit() else float(v)
            except ValueError:
                rec[k] = v
        out.append(rec)
    return out
