"""The learner process of a robot run: trains on the episodes that have landed, publishes versions.

Legend: ``v`` policy version (the learner's update-round count; version 0 is the starting policy).

One loop, read top to bottom (:meth:`ArmLearner.run`)::

    repeat:
        read        episodes the actor committed since the last look (and any relabels of older ones)
        replay      each episode a (L, 1) batch tagged with its behaviour version; lag = v - that version;
                    with stale="drop" episodes more than max_lag versions old leave the buffer
        BC data     the operator's intervention steps (and demonstrations: demo_store, logged teleop)
        update      once min_new_steps new steps are there (sync mode: after every episode): critic, then
                    policy, epochs x new steps / minibatch gradient steps (the update-to-data ratio)
        log         metrics.csv, then
        checkpoint  the learner's whole state, swapped in as one unit (gipo_robot.train.state), then
        publish     v + 1 as a safetensors checkpoint + latest.json (atomic)
        heartbeat   learner.json: version, rounds, updates/s, state

It never waits on the actor for anything but data, and stops when the actor says it has finished (or, when
started by ``finetune --robot``, when that process is gone) and no new episode is left to learn from.

Resume: ``RUN/checkpoint/`` holds policy, critic, optimisers, the minibatch generator and the counters of
the last finished round; the replay buffer is rebuilt from the store (every committed episode is there),
so a killed learner (kill -9 included, mid-save too) loses at most the round in progress. A version is
checkpointed before it is published, and a resumed learner publishes its checkpoint's version if a kill
came between the two, so every version the actor is handed is one the learner's checkpoint holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gipo_robot.configs import load_config
from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies.checkpoint import load_critic, load_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.train.arm.channel import RunChannel
from gipo_robot.train.arm.config import ArmConfig
from gipo_robot.train.arm.episodes import episode_batch, episode_keys, intervention_data
from gipo_robot.train.arm.logs import LoggedData
from gipo_robot.train.learner import FinetuneError, Learner, load_demo_data
from gipo_robot.train.replay import ReplayBuffer
from gipo_robot.train.state import (
    load_trainer_state,
    read_history,
    recover_checkpoint,
    save_trainer_state,
    write_history,
)

__all__ = ["ArmLearner", "main"]

POLL_S = 0.25
"""How often an idle learner looks for new episodes, s."""


class ArmLearner:
    """The learner side of a robot run in ``run`` (see the module docstring).

    Args:
        run: the run directory (its ``config.json`` and ``weights/v000000`` must exist).
        parent: stop when this process (the ``finetune --robot`` that started us) is gone; None: run until
            the actor's heartbeat says it finished.
    """

    def __init__(self, run: str | Path, *, parent: int | None = None) -> None:
        self.dir = Path(run)
        self.channel = RunChannel(self.dir)
        self.config = load_config(ArmConfig, self.dir / "config.json")
        self.parent = parent
        resume = recover_checkpoint(self.dir / "checkpoint")  # an interrupted save undone
        start = self.dir / "checkpoint" if resume else self.channel.weights / "v000000"
        self.policy = load_policy(start)
        self.chunk, self.low_dim = self.policy.config.chunk, sorted(self.policy.config.low_dim)
        self.images = sorted(self.policy.config.images)  # camera frames: uint8, channels first, held once
        if resume:
            self.critic = load_critic(start)
        else:
            torch.manual_seed(self.config.seed)  # the critic's head: seeded, so a run is reproducible
            self.critic = Critic(self.policy.config)
            self.critic.encoder.load_state_dict(self.policy.encoder.state_dict())
        self.logs = LoggedData.load(self.config.from_stores, self.low_dim, self.chunk, self.config.gamma,
                                    images=self.policy.config.images)  # fmt: skip
        # the BC term's data: demo_store's demonstrations, then logged teleop, then interventions as they come
        demos = [d for d in (load_demo_data(self.config, self.policy), self.logs.bc) if d is not None]
        self.learner = Learner(self.policy, self.critic, self.config, demo_data=_concat_bc(demos))
        if self.logs.bc is not None and self.learner.bc_coef == 0:
            self.learner.bc_coef = self.config.intervention_bc_coef
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.version, self.rounds, self.consumed, self.env_steps = 0, 0, 0, 0
        self.history: list[dict[str, Any]] = []
        if resume:
            state = load_trainer_state(start, optims=self.learner.optimizers, generator=self.generator)
            p = state.progress
            self.version, self.rounds, self.consumed = p["version"], p["rounds"], p["consumed"]
            self.env_steps = p["env_steps"]
            self.history = read_history(self.dir / "metrics.csv")[: self.rounds]
            published = self.channel.latest()
            if published is None or published[0] < self.version:  # killed after its checkpoint
                self._publish()
        elif self.logs.n_episodes and self.config.critic_pretrain_steps:
            self.logs.pretrain_critic(
                self.critic, self.learner.optimizers["critic"], self.config, self.generator
            )
        self.store: EpisodeStore | None = None
        self.buffered: dict[int, tuple[int, bool]] = {}  # store episode -> (its version, its label)
        self.replay = ReplayBuffer(self.config.replay_episodes)
        self.pending = 0  # steps landed since the last round
        self.dropped = 0  # episodes dropped as too stale
        self.t_start = time.perf_counter()
        self.updates_total = 0

    # --------------------------------------------------------------------------------------------- loop

    def run(self) -> None:
        """Learn until the actor has finished and every episode it committed was learned from."""
        self._rebuild()
        self._beat("running")
        try:
            while True:
                landed = self._read_new()
                due = self.config.min_new_steps if self.config.mode == "async" else 1
                if self.pending >= due:
                    self.update_round()
                elif not landed and self._actor_done():
                    if self._read_new():  # committed between our look and the actor's "finished"
                        continue
                    if self.pending:  # the last few steps: one more round so nothing is left unused
                        self.update_round()
                    break
                else:
                    time.sleep(POLL_S)
                    self._beat("running")
        except FinetuneError as err:
            self._beat("failed", error=str(err))
            raise
        self._beat("finished")

    def update_round(self) -> dict[str, Any]:
        """One round of updates over the buffer; publishes version + 1; returns the round's record."""
        config = self.config
        self._drop_stale()
        n_updates = config.updates_for(self.pending)
        t0 = time.perf_counter()
        record: dict[str, Any] = {"round": self.rounds + 1, "version": self.version + 1,
                                  "episodes": self.consumed, "env_steps": self.env_steps,
                                  "new_steps": self.pending, "n_updates": n_updates}  # fmt: skip
        staleness = self.replay.staleness(self.version)
        samples = max(1, sum(staleness.values()))
        mean_lag = sum(a * c for a, c in staleness.items()) / samples
        record.update(lag_hist=json.dumps(staleness), mean_lag=mean_lag,
                      max_lag_seen=max(staleness, default=0), dropped_stale_episodes=self.dropped,
                      replay_steps=len(self.replay), bc_steps=len(self.learner.demo_data or ()))  # fmt: skip
        if len(self.replay):
            record.update(self.learner.update(self.replay, self.rounds, self.generator, n_updates))
        update_s = time.perf_counter() - t0
        self.updates_total += n_updates
        record.update(update_s=update_s, updates_per_s=n_updates / max(update_s, 1e-9),
                      success_20=self._recent_success(), robot_s=self._robot_seconds())  # fmt: skip
        self.version += 1
        self.rounds += 1
        self.pending = 0
        self.history.append(record)  # logged first: a resume cuts the history back to its checkpoint
        write_history(self.dir / "metrics.csv", self.history)
        self._checkpoint()
        self._publish()
        if self.rounds % 5 == 0:
            self._plot()
        self._beat("running", last=record)
        return record

    # --------------------------------------------------------------------------------------------- data

    def _open_store(self) -> EpisodeStore | None:
        if self.store is None and self.channel.store_path.exists():
            self.store = EpisodeStore.open(self.channel.store_path, "r")
        elif self.store is not None:
            self.store.refresh()
        return self.store

    def _rebuild(self) -> None:
        """After a resume: the buffer and BC data from the episodes already consumed."""
        self._add_episodes(0, self.consumed, count=False)
        self._add_logged()

    def _read_new(self) -> bool:
        """Take in the episodes committed since the last look; True if there were any."""
        store = self._open_store()
        if store is None:
            return False
        self._relabel(store)
        if store.n_episodes <= self.consumed:
            return False
        first, self.consumed = self.consumed, store.n_episodes
        self._add_episodes(first, self.consumed, count=True)
        return True

    def _add_episodes(self, first: int, stop: int, *, count: bool) -> None:
        store = self._open_store()
        if store is None or stop <= first:
            return
        table = store.meta_table()
        keys = episode_keys(store.schema, [*self.low_dim, *self.images])
        demos = []
        for i in range(first, stop):
            steps = store.episode(i, keys)
            success, version = bool(table["success"][i]), int(table["policy_version"][i])
            batch = episode_batch(steps, success=success, version=version, low_dim=self.low_dim,
                                  chunk=self.chunk, images=self.images)  # fmt: skip
            self.replay.add(batch, any_order=True)
            self.replay.batches[-1].episode = i  # type: ignore[attr-defined]
            self.buffered[i] = (version, success)
            demos.append((i, steps, np.asarray(steps.get("intervention", np.zeros(0, bool)), dtype=bool)))
            if count:
                self.pending += len(steps["action"])
                self.env_steps += len(steps["action"])
        self._extend_bc(demos)

    def _add_logged(self) -> None:
        """Logged episodes with behaviour log-probs join the buffer as version-0 data (the run's start)."""
        for batch in self.logs.batches:
            self.replay.add(batch, any_order=True)

    def _extend_bc(self, demos: list) -> None:
        """Add intervention steps to the BC data; turn the BC term on once there are any."""
        new = intervention_data(demos, self.low_dim, self.chunk, self.images)
        if new is None:
            return
        self.learner.demo_data = _concat_bc([d for d in (self.learner.demo_data, new) if d is not None])
        if self.learner.bc_coef == 0:
            self.learner.bc_coef = self.config.intervention_bc_coef

    def _relabel(self, store: EpisodeStore) -> None:
        """Episodes relabelled since they were read (``gipo-robot label``) get their new reward."""
        if not self.buffered:
            return
        success = store.meta_table()["success"]
        for batch in self.replay.batches:
            i = getattr(batch, "episode", None)
            if i is None or i >= len(success) or bool(success[i]) == self.buffered[i][1]:
                continue
            label = bool(success[i])
            batch.rewards[-1, 0] = float(label)
            batch.terminated[-1, 0], batch.truncated[-1, 0] = label, not label
            self.buffered[i] = (self.buffered[i][0], label)

    def _drop_stale(self) -> None:
        if self.config.stale != "drop":
            return
        keep = [b for b in self.replay.batches if self.version - b.version <= self.config.max_lag]
        self.dropped += len(self.replay.batches) - len(keep)
        self.replay.batches = keep

    # --------------------------------------------------------------------------------------- bookkeeping

    def _recent_success(self) -> float:
        labels = [s for _, (_, s) in sorted(self.buffered.items())][-20:]
        return float(np.mean(labels)) if labels else float("nan")

    def _robot_seconds(self) -> float:
        return float(self.channel.heartbeat("actor").get("robot_s", float("nan")))

    def _actor_done(self) -> bool:
        if self.parent is not None and not _alive(self.parent):
            return True
        return bool(self.channel.heartbeat("actor").get("finished"))

    def _checkpoint(self) -> None:
        progress = {"version": self.version, "rounds": self.rounds, "consumed": self.consumed,
                    "env_steps": self.env_steps, "launches": 0}  # fmt: skip
        save_trainer_state(
            self.dir / "checkpoint", policy=self.policy, critic=self.critic, optims=self.learner.optimizers,
            replay=ReplayBuffer(1), generator=self.generator, progress=progress,
            provenance={"trainer": "finetune --robot", "version": self.version},
        )  # fmt: skip

    def _publish(self) -> None:
        self.channel.publish(self.policy, self.version, {"trainer": "finetune --robot", "round": self.rounds})

    def _beat(self, state: str, **extra: Any) -> None:
        elapsed = time.perf_counter() - self.t_start
        self.channel.beat("learner", state=state, version=self.version, rounds=self.rounds,
                          episodes=self.consumed, updates_per_s=self.updates_total / max(elapsed, 1e-9),
                          **extra)  # fmt: skip

    def _plot(self) -> None:
        from gipo_robot.train.arm.report import plot_run

        try:
            plot_run(self.dir)
        except Exception as err:
            print(f"learning curve not written: {err}", file=sys.stderr)


def _concat_bc(parts: list) -> Any:
    """One BCData of ``parts`` in order (None for none)."""
    from gipo_robot.policies.bc import BCData

    if len(parts) <= 1:
        return parts[0] if parts else None
    return BCData(
        {k: torch.cat([p.obs[k] for p in parts]) for k in parts[0].obs},
        torch.cat([p.actions for p in parts]),
        torch.cat([p.mask for p in parts]),
        torch.cat([p.episode for p in parts]),
        parts[0].images,
    )


def _alive(parent: int) -> bool:
    """Whether ``parent`` (the process that started this one) still runs: once it is gone this process is
    re-parented (a zombie parent would still answer ``os.kill(pid, 0)``)."""
    return os.getppid() == parent


def main(argv: list[str] | None = None) -> int:
    """``python -m gipo_robot.train.arm.learner_loop RUN [--parent PID]``."""
    parser = argparse.ArgumentParser(prog="gipo_robot.train.arm.learner_loop")
    parser.add_argument("run", type=Path)
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the actor
    ArmLearner(args.run, parent=args.parent).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
