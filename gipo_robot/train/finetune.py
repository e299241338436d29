"""Fine-tune a pretrained Gaussian policy with GIPO (or a baseline objective) on few, stale rollouts.

One loop, read top to bottom (``finetune``)::

    for each iteration:
        collect   T decision steps in N parallel envs with the current policy (version v)
        replay    add the batch to the buffer of the last K batches, evict the oldest
        advantages   recompute V and GAE (or V-trace) for every batch with the current critic
        update    critic, then policy: U minibatch steps sampled across the buffer with the objective
        evaluate  every `eval_every` iterations, deterministic episodes on held-out seeds (on `eval_workers`
                  processes: the same per-seed results as one env)
        log       CSV + TensorBoard; checkpoint (policy, critic, optimisers, buffer, RNG, episodes) for resume
        store     the episodes into the episode store (source "rollout", behaviour logp, policy version)

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
- A checkpoint is one unit, swapped in whole after every iteration (:mod:`gipo_robot.train.state`). It
  holds the iteration's episodes and the rollout store's episode count with them; the episodes reach the
  store only after it is saved. A run killed at any moment (kill -9 included) resumes from the last whole
  checkpoint: an iteration that had no checkpoint yet stored nothing and is collected again, the appends a
  kill cut short are finished from the checkpoint. Every episode is stored once, and in simulation the
  resumed run equals one that was never interrupted. (Appending first and dropping the extra episodes on a
  resume would rewrite the whole store per episode dropped: 18 s for one of 300 short episodes.)
- An iteration's episodes reach the store only once its whole batch is collected. If a Ray worker dies
  mid-collection (``backend="ray"``), the partial batch is dropped, the sampling generator rewound, and
  the iteration collected again on the replaced worker: the run goes on (``worker_restarts`` counts it)
  and, in simulation, equals a run without the failure.
- ``async_collection=True`` (Ray): workers hold a policy copy and keep collecting with the last weights
  they received while the learner updates (:mod:`gipo_robot.train.async_collect`). An iteration then
  consumes whichever worker's batch is ready first (``N / workers`` envs × T steps), so its data is
  ``batch_lag`` versions old; batches more than ``max_lag`` versions old are dropped. This is the stale
  data GIPO is built for; the staleness histogram shows the real lag.
- ``policy_lag=L`` (lockstep) makes the lag a controlled variable instead: each batch is collected by the
  policy of L versions before the current one (:mod:`gipo_robot.train.lag`, the versions kept in the
  checkpoint), with the buffer still ``replay_size`` batches, so the data quantity is the same at every L.
  Both modes log the lag of each iteration's batch as ``batch_lag``.
- A policy that reads cameras (``PolicyConfig.images``) gets envs that render exactly those cameras at its
  resolution with the fast settings (:func:`~gipo_robot.policies.obs_sets.sim_camera_options`: the rollout
  envs, the evaluation env and the asynchronous workers alike). Frames travel uint8 from the simulator to
  the replay (each held once, :class:`~gipo_robot.train.replay.RolloutBatch`), the learner's minibatches,
  the BC term's demonstrations and ``rollouts.zarr`` (an image feature with the store's codec). The camera
  encoders learn as ``camera_encoder`` says (the policy's at ``policy_lr × camera_encoder_lr_scale``, the
  critic's own copy at ``critic_lr``, or both frozen); frames are not augmented (the ratio must see the
  behaviour policy's own frames).
- ``critic_obs="state"`` gives such a policy an asymmetric critic on the simulator's low-dim state, object
  pose included (:mod:`gipo_robot.train.critic_obs`): the batch keeps those features beside the policy's (a
  few floats per step), the policy never reads them, and the checkpoint records the critic's own features.
- ``learner_device`` (``cuda``) puts the learner's policy, critic and optimisers on a GPU; collection, the
  lagged versions, the asynchronous workers and evaluation act with a CPU copy of the policy, synced from the
  learner once per iteration right after the update (:func:`~gipo_robot.train.learner.sync_weights`), so no
  env step waits on a transfer. On the CPU there is one policy and no copy.

Shapes: ``T`` decision steps per iteration, ``N`` envs, ``H`` chunk, ``A`` action size, ``B`` minibatch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gipo_robot.configs import load_config, save_config
from gipo_robot.loops.eval_pool import EvalPool
from gipo_robot.loops.evaluate import EVAL_SEED, evaluate
from gipo_robot.policies.checkpoint import check_spec, load_critic, load_policy, save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.policies.obs_sets import sim_camera_options
from gipo_robot.train.collect import backend_options, collect_iteration, store_episodes
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.critic_obs import build_critic, critic_features
from gipo_robot.train.lag import PolicyHistory
from gipo_robot.train.learner import (
    FinetuneError,
    Learner,
    collection_policy,
    load_demo_data,
    sync_weights,
)
from gipo_robot.train.replay import ReplayBuffer
from gipo_robot.train.state import (
    crash_point,
    load_trainer_state,
    read_history,
    recover_checkpoint,
    save_trainer_state,
    tensorboard_writer,
    write_history,
)

__all__ = ["FinetuneConfig", "FinetuneError", "finetune"]


def finetune(
    config: FinetuneConfig,
    policy_path: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Fine-tune the policy at ``policy_path``; write the run to ``out``; return one record per iteration.

    ``out`` receives ``config.json`` (which starts the same run again: ``gipo-robot finetune --config``),
    ``metrics.csv``, TensorBoard events (``tb/``), the rollout store (``rollouts.zarr``), ``checkpoint/``
    (latest state, resumable), ``checkpoint.prev/`` (the one before), ``best/`` (the policy and critic whose
    evaluation was the run's highest so far, the first of equals; its ``config.json`` provenance says when)
    and ``learning_curve.png``.

    Args:
        config: the run's settings.
        policy_path: a policy checkpoint (e.g. from ``gipo-robot train-bc``).
        out: run directory.
        resume: continue the run in ``out`` from its last checkpoint (same config required).
        stop_after: stop (resumably) once this many iterations are done; None runs to ``config.env_steps``.
        progress: show a progress bar on stderr (its total is the budget rounded up to whole iterations).
        on_iteration: called with each iteration's record.

    Raises:
        FinetuneError: non-finite updates ``max_bad_updates`` times in a row, or a resume that does not fit.
        CheckpointError: the policy does not fit the task's spec, or the checkpoint to resume is damaged.
    """
    run = _Run.start(config, Path(policy_path), Path(out), resume=resume)
    bar = tqdm(total=config.total_env_steps, initial=run.env_steps, desc=f"finetune {config.objective}",
               unit="step", disable=not progress)  # fmt: skip
    for note in [n for n in (_rounding_note(config), run.resume_note) if n and progress]:
        bar.write(note, file=sys.stderr)
    try:
        for iteration in range(run.start_iteration, config.iterations):
            if stop_after is not None and iteration >= stop_after:
                break
            record: dict[str, Any] = {"iteration": iteration + 1}

            # --- collect (the whole batch, or nothing) ------------------------------------------------------
            batch = run.collect(iteration, record)

            # --- replay (asynchronous batches arrive in any version order) ----------------------------------
            run.replay.add(batch, any_order=run.collector is not None or run.lagged is not None)
            staleness = run.replay.staleness(iteration)
            record["staleness"] = json.dumps(staleness)
            record["mean_staleness"] = sum(a * c for a, c in staleness.items()) / max(1, len(run.replay))

            # --- advantages, critic and policy updates ------------------------------------------------------
            run.update(iteration, record)  # then the CPU copy that collects and evaluates is synced
            if run.collector is not None:  # publish version + 1; the worker whose batch this was goes on
                run.collector.publish(run.actor, iteration + 1)
                run.collector.launch(run.arrival.worker)

            # --- evaluate -----------------------------------------------------------------------------------
            if (iteration + 1) % config.eval_every == 0 or iteration == config.iterations - 1:
                run.evaluate_into(record, policy_path)  # and best/ when it beats every earlier evaluation

            # --- log, checkpoint, store (the checkpoint holds the episodes until the store has them) --------
            run.log(record)
            run.checkpoint(iteration, policy_path)
            run.store_episodes(background=True)  # written while the next iteration collects
            bar.update(len(batch))
            bar.set_postfix(success=f"{record.get('eval_success', record['rollout_success']):.2f}",
                            sps=f"{record['env_steps_per_s']:.0f}")  # fmt: skip
            if on_iteration is not None:
                on_iteration(record)
    finally:
        bar.close()
        run.close()
    from gipo_robot.train.plot import plot_runs

    plot_runs([run.out], run.out / "learning_curve.png")
    return run.history


@dataclass
class _Run:
    """Everything one fine-tuning run holds between iterations (built by :meth:`start`)."""

    config: FinetuneConfig
    out: Path
    policy: GaussianPolicy  # the learner's, on learner_device
    critic: Critic
    learner: Learner
    actor: GaussianPolicy  # the CPU policy collection and evaluation act with (``policy`` itself on the CPU)
    replay: ReplayBuffer
    generator: torch.Generator
    store: Any
    eval_env: Any
    venv: Any  # lockstep vector env, or None with asynchronous collection
    collector: Any  # AsyncCollector, or None
    writer: Any  # TensorBoard SummaryWriter, or None
    history: list[dict[str, Any]]
    start_iteration: int = 0
    env_steps: int = 0
    arrival: Any = None  # the last asynchronous batch's arrival (which worker, how stale)
    t_end: float = 0.0  # when the previous iteration ended (asynchronous throughput)
    resume_note: str = ""  # where a resumed run goes on from (shown with the progress bar)
    episodes: list[dict[str, Any]] = field(default_factory=list)  # collected, not yet stored
    episodes_version: int = 0  # the policy version that collected them
    eval_pool: Any = None  # EvalPool, started at the first evaluation (None: evaluate on eval_env)
    store_writer: Any = None  # ThreadPoolExecutor (one thread) appending to the rollout store, or None
    store_pending: Any = None  # the Future of the last iteration's appends, or None
    lagged: PolicyHistory | None = None  # the last policy_lag + 1 versions (controlled lag), or None
    fit_critic_stats: bool = False  # a new state critic (critic_obs="state"): normalise on the first batch
    best_success: float = -math.inf  # the highest evaluation so far (the policy in best/)

    @classmethod
    def start(cls, config: FinetuneConfig, policy_path: Path, out: Path, *, resume: bool) -> _Run:
        """Set a run up: config check or save, envs, policy and critic, learner, replay, store, resume."""
        from gipo_robot.datasets import EpisodeStore
        from gipo_robot.datasets.schema import step_schema
        from gipo_robot.sim import make_env, make_vector_env

        if resume:
            policy_path = _checkpoint_to_resume(out)
            _check_resume(config, out)
        else:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.json")
        # The policy first: the envs render exactly its cameras, at its resolution (none for state policies).
        policy = load_policy(policy_path)
        cameras = sim_camera_options(policy.config.images)
        demos = load_demo_data(config, policy)  # before any env: a store that does not fit stops nothing
        venv = None
        if not config.async_collection:
            venv = make_vector_env(
                config.task, config.num_envs, backend=config.backend, horizon=config.horizon,
                backend_options=backend_options(config), **cameras,
            )  # fmt: skip
        eval_env = make_env(config.task, horizon=config.horizon, **cameras)
        spec = eval_env.robot_spec
        shapes = {k: list(v) for k, v in spec.obs_shapes.items()}
        images = {k: [v[2], v[0], v[1]] for k, v in shapes.items() if spec.obs_dtypes[k] == "uint8"}
        check_spec(policy.config, low_dim=shapes, images=images, action_dim=spec.action_dim,
                   where=f"policy at {policy_path}")  # fmt: skip
        if config.init_log_std is not None and not resume:
            _set_log_std(policy, config.init_log_std)
        if resume:
            critic = load_critic(policy_path)
        else:  # what critic_obs says: the policy's features (encoder copied from it) or the sim's state
            low_dim = {k: v for k, v in shapes.items() if k not in images}
            critic = build_critic(config, policy, low_dim, where=f"the {config.task} env")
        actor = collection_policy(policy, torch.device(config.learner_device))  # before the policy moves
        learner = Learner(policy, critic, config, demos)  # moves the policy and the critic to learner_device
        run = cls(
            config, out, policy, critic, learner, actor, ReplayBuffer(config.replay_size),
            torch.Generator().manual_seed(config.seed), store=None, eval_env=eval_env, venv=venv,
            collector=None, writer=tensorboard_writer(out / "tb"), history=[],
            lagged=PolicyHistory(actor, config.policy_lag) if config.policy_lag else None,
        )  # fmt: skip
        launches = 0
        if resume:
            launches = run.resume(policy_path)
        else:
            run.store = EpisodeStore.create(out / "rollouts.zarr", step_schema(spec), fps=spec.control_hz,
                                            overwrite=True)  # fmt: skip
        run.fit_critic_stats = config.critic_obs == "state" and not resume
        if config.async_collection:  # workers start collecting with the current weights
            run.collector = _async_collector(
                config, actor, run.start_iteration, launches, critic_features(critic)
            )
        run.t_end = time.perf_counter()
        return run

    def resume(self, path: Path) -> int:
        """Take up the checkpoint at ``path``: replay, optimisers, generator, counters and history; store
        the episodes of its iteration that the store lacks. Returns the asynchronous collector's launch
        count."""
        from gipo_robot.datasets import EpisodeStore

        state = load_trainer_state(path, optims=self.learner.optimizers, generator=self.generator)
        self.replay = state.replay
        if self.lagged is not None:
            self.lagged.load_tensors(state.extra)
        self.start_iteration, self.env_steps = state.progress["iteration"], state.progress["env_steps"]
        self.history = read_history(self.out / "metrics.csv")[: self.start_iteration]
        self.best_success = max(
            (r["eval_success"] for r in self.history if "eval_success" in r), default=-math.inf
        )
        self.store = EpisodeStore.open(self.out / "rollouts.zarr", "a")
        # The checkpoint's own episodes that a kill kept from the store (all of them when it came right
        # after the save, the rest when it came mid-append): stored now, once.
        accounted = state.progress.get("store_episodes")  # None: a checkpoint from before it was recorded
        first = (accounted or 0) - len(state.episodes)
        note = f"resuming after iteration {self.start_iteration} of {self.config.iterations} from {path}"
        if accounted is not None and first <= self.store.n_episodes < accounted:
            self.episodes = state.episodes[self.store.n_episodes - first :]
            self.episodes_version = state.progress["episodes_version"]
            note += f"; storing {len(self.episodes)} of its episodes a kill kept from rollouts.zarr"
            self.store_episodes()
        elif accounted is not None and self.store.n_episodes != accounted:
            note += f"; rollouts.zarr holds {self.store.n_episodes} episodes, the checkpoint {accounted}"
        self.resume_note = note
        return state.progress["launches"]

    def collect(self, iteration: int, record: dict[str, Any]) -> Any:
        """The iteration's batch (lockstep, or the first asynchronous one ready); its episodes are kept for
        :meth:`checkpoint` and :meth:`store_episodes`."""
        t0 = time.perf_counter()
        if self.collector is not None:
            self.arrival = self.collector.take()
            got = self.arrival.collected
            record.update(batch_lag=self.arrival.lag, dropped_stale_batches=self.collector.dropped,
                          dropped_env_steps=self.collector.dropped_steps)  # fmt: skip
        else:
            behaviour, version = self.actor, iteration
            if self.lagged is not None:  # controlled lag: the version policy_lag before this one acts
                self.lagged.push(self.actor, iteration)
                behaviour, version = self.lagged.behaviour()
                record["batch_lag"] = iteration - version
            got = collect_iteration(behaviour, self.venv, self.config, iteration, self.generator, version,
                                    critic_features(self.critic))  # fmt: skip
        batch = got.batch
        if self.fit_critic_stats:  # a state critic's normalisation, from the run's first batch
            self.critic.fit_obs_stats(batch.flat("obs"))
            self.fit_critic_stats = False
        self.episodes, self.episodes_version = got.episodes, batch.version
        collect_s = time.perf_counter() - t0
        self.env_steps += len(batch)
        # With asynchronous collection, collecting overlaps the update: throughput over the iteration.
        wall_s = time.perf_counter() - self.t_end if self.collector is not None else collect_s
        record.update(got.stats, env_steps=self.env_steps, env_steps_per_s=len(batch) / wall_s,
                      collect_s=collect_s,
                      worker_restarts=(self.collector or self.venv).restarts)  # fmt: skip
        return batch

    def update(self, iteration: int, record: dict[str, Any]) -> None:
        """The learner's updates over the replay (their stats into ``record``), then the collection copy
        synced from the learner (nothing to sync when the learner is on the CPU: one policy)."""
        t0 = time.perf_counter()
        record.update(self.learner.update(self.replay, iteration, self.generator))
        sync_weights(self.policy, self.actor)
        record["update_s"] = time.perf_counter() - t0

    def log(self, record: dict[str, Any]) -> None:
        """Append the record to the history, ``metrics.csv`` and TensorBoard."""
        self.history.append(record)
        write_history(self.out / "metrics.csv", self.history)
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, int | float) and k != "iteration":
                    self.writer.add_scalar(k, v, self.env_steps)

    def checkpoint(self, iteration: int, policy_path: Path | str) -> None:
        """Save the whole training state after ``iteration`` (what :meth:`start` resumes from)."""
        self.wait_for_store()  # the episode count it records includes the previous iteration's
        launches = self.collector.launches if self.collector is not None else 0
        save_trainer_state(
            self.out / "checkpoint", policy=self.policy, critic=self.critic, optims=self.learner.optimizers,
            replay=self.replay, generator=self.generator,
            progress={"iteration": iteration + 1, "env_steps": self.env_steps, "launches": launches,
                      "store_episodes": self.store.n_episodes + len(self.episodes),
                      "episodes_version": self.episodes_version},
            episodes=self.episodes,
            extra=self.lagged.to_tensors() if self.lagged is not None else None,
            provenance={"trainer": "finetune", "config": asdict(self.config),
                        "base_policy": str(policy_path)},
        )  # fmt: skip
        self.t_end = time.perf_counter()

    def evaluate_into(self, record: dict[str, Any], policy_path: Path | str) -> None:
        """Evaluate the current policy into ``record`` (success, return, length, seconds); keep it in
        ``best/`` when it beats every earlier evaluation of the run."""
        t0 = time.perf_counter()
        result = self.evaluate()
        record.update(eval_success=result.success_rate, eval_return=result.mean_return,
                      eval_length=result.mean_length, eval_s=time.perf_counter() - t0)  # fmt: skip
        self.keep_best(record, policy_path)

    def keep_best(self, record: dict[str, Any], policy_path: Path | str) -> None:
        """Save the policy (with its critic) to ``best/`` when the evaluation in ``record`` beats every
        earlier one of the run: the snapshot to deploy when a run peaks and then degrades."""
        if record["eval_success"] <= self.best_success:
            return
        self.best_success = record["eval_success"]
        best = {"iteration": record["iteration"], "env_steps": self.env_steps,
                "eval_success": self.best_success, "eval_episodes": self.config.eval_episodes}  # fmt: skip
        save_policy(self.out / "best", self.policy, critic=self.critic,
                    provenance={"trainer": "finetune", "config": asdict(self.config),
                                "base_policy": str(policy_path), "best": best})  # fmt: skip

    def store_episodes(self, *, background: bool = False) -> None:
        """Append the episodes the last checkpoint holds to the rollout store, one commit each; with
        ``background``, on a thread (off the critical path: :meth:`wait_for_store` joins it)."""
        episodes, version, iteration = self.episodes, self.episodes_version, len(self.history)
        self.episodes = []

        def append() -> None:
            for i, episode in enumerate(episodes):
                if i:
                    crash_point("appending", iteration)  # a test hook: a kill between two appends
                store_episodes(self.store, [episode], task=self.config.task, version=version)

        if not background:
            return append()
        if self.store_writer is None:
            self.store_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-store")
        self.wait_for_store()
        self.store_pending = self.store_writer.submit(append)

    def wait_for_store(self) -> None:
        """Wait until the episodes being appended in the background are in the store; raise its error."""
        if self.store_pending is not None:
            pending, self.store_pending = self.store_pending, None
            pending.result()

    def evaluate(self) -> Any:
        """The current policy's deterministic episodes on the held-out seeds, on ``eval_workers`` processes
        (the same per-seed results as on the one evaluation env)."""
        config = self.config
        workers = config.eval_workers or min(os.cpu_count() or 1, config.eval_episodes)
        if workers == 1:
            return evaluate(self.actor, self.eval_env, config.eval_episodes, seed=EVAL_SEED, execute_steps=1,
                            progress=False)  # fmt: skip
        if self.eval_pool is None:  # the rollout workers between two iterations, else processes of its own
            borrowed = (
                EvalPool.borrow(self.venv, self.eval_env.config) if config.eval_workers is None else None
            )
            self.eval_pool = borrowed or EvalPool.start(self.eval_env.config, workers)
        return self.eval_pool.evaluate(self.actor, config.eval_episodes, seed=EVAL_SEED, execute_steps=1)

    def close(self) -> None:
        """Finish the store's appends; stop the rollout and evaluation workers, the evaluation env and
        the TensorBoard writer."""
        self.wait_for_store()
        if self.store_writer is not None:
            self.store_writer.shutdown()
        for sampler in (self.venv, self.collector, self.eval_pool):
            if sampler is not None:
                sampler.close()
        self.eval_env.close()
        if self.writer is not None:
            self.writer.close()


def _rounding_note(config: FinetuneConfig) -> str:
    """Say that the budget was rounded up to whole iterations (the progress bar shows the real total), or
    nothing when it was not."""
    if config.total_env_steps == config.env_steps:
        return ""
    return (
        f"env_steps {config.env_steps:,} rounded up to {config.total_env_steps:,}: "
        f"whole iterations of {config.batch_envs} envs x {config.steps_per_env:,} steps"
    )


def _checkpoint_to_resume(out: Path) -> Path:
    """``out/checkpoint``, an interrupted save undone (:func:`recover_checkpoint`); FinetuneError if none."""
    path = out / "checkpoint"
    if recover_checkpoint(path):
        return path
    if path.exists():
        raise FinetuneError(f"{path} holds no trainer state (trainer_state.json): it cannot be resumed")
    raise FinetuneError(
        f"nothing to resume in {out}: there is no checkpoint (the run was stopped before its first "
        "checkpoint, or never started there); start it again without --resume"
    )


def _check_resume(config: FinetuneConfig, out: Path) -> None:
    """Refuse to resume ``out`` with another config. Fields a run saved before they existed take their
    defaults (the behaviour it ran with)."""
    if load_config(FinetuneConfig, out / "config.json") != config:
        raise FinetuneError(f"{out / 'config.json'} differs from the given config; resume needs the same one")


def _set_log_std(policy: GaussianPolicy, value: float) -> None:
    """Start fine-tuning from exploration noise ``value`` (FinetuneError when the policy cannot)."""
    try:
        policy.set_log_std(value)
    except ValueError as err:
        raise FinetuneError(f"init_log_std: {err}") from None


def _async_collector(
    config: FinetuneConfig, policy: GaussianPolicy, version: int, launches: int, keep: tuple[str, ...]
) -> Any:
    """Ray workers that collect with the weights they have while the learner updates (the batches keep the
    critic's features ``keep`` too)."""
    from gipo_robot.sim import EnvConfig
    from gipo_robot.train.async_collect import AsyncCollector

    env_config = EnvConfig(
        task=config.task, horizon=config.horizon, **sim_camera_options(policy.config.images)
    )
    return AsyncCollector(
        env_config, config.num_envs, policy, version,
        workers=config.workers, steps=config.steps_per_env, seed=config.seed, max_lag=config.max_lag,
        address=config.ray_address, max_restarts=config.max_worker_restarts, launches=launches,
        critic_features=keep,
    )  # fmt: skip
