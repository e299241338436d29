"""Where a recording session's steps go: the teleop store schema, the store, and the background writer.

Legend: ``A`` action size.

A session appends to one episode store (:func:`open_store`: created with :func:`teleop_schema`, or an
existing store with the same schema and rate, so recording resumes by appending). The slow part of
writing (image encoding, compression, disk) runs on a writer thread that owns the store's
:class:`~gipo_robot.datasets.store.EpisodeWriter` (:class:`BackgroundWriter`), so it never delays a control
step.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gipo_robot.datasets.schema import DatasetError, Feature, Schema, step_schema
from gipo_robot.hardware.robot import RobotSpec

__all__ = ["BackgroundWriter", "open_store", "teleop_schema"]


# ------------------------------------------------------------------------------------------------ schema


def teleop_schema(spec: RobotSpec, *, image_codec: str | None = None) -> Schema:
    """The store schema of a teleop session on a robot with ``spec``.

    Features: ``obs.<name>`` per observation (uint8 ``(H, W, C)`` images, float32 otherwise), ``action``
    (A,) float32 (the command actually sent), ``reward``, ``terminated``, ``truncated``, ``success`` (the
    task's, where the robot knows it), ``timestamp`` (s since the episode start), the rollout features
    ``logp``/``policy_version`` (filled 0.0/-1), and ``intervention`` (bool: the operator had taken over
    from a policy at this step). The same features as scripted sim demos
    (:func:`gipo_robot.datasets.schema.step_schema`) plus ``intervention``.
    """
    intervention = Feature("intervention", "bool", (), "scalar", fill=False)
    return step_schema(spec, image_codec=image_codec, extra=(intervention,))


def open_store(
    path: str | Path,
    spec: RobotSpec,
    fps: float,
    attrs: Mapping[str, Any],
    *,
    image_codec: str | None = None,
) -> Any:
    """Create the store at ``path``, or open it for appending after checking it fits this session.

    Args:
        path: the episode store.
        spec: the robot recorded.
        fps: the session's control and recording rate, Hz.
        attrs: store attributes of a new store (the session's settings).
        image_codec: frame codec of camera features in a new store (None: the store's default).

    Raises:
        DatasetError: the existing store's schema or rate differs (the message lists the differences).
    """
    from gipo_robot.datasets.store import EpisodeStore

    schema = teleop_schema(spec, image_codec=image_codec)
    if not Path(path).exists():
        return EpisodeStore.create(path, schema, fps=fps, robot=spec.to_dict(), attrs=attrs)
    store = EpisodeStore.open(path, "a")
    have = {f.name: f.to_json() for f in store.schema.features}
    want = {f.name: f.to_json() for f in schema.features}
    problems = [f"missing feature {n!r}" for n in want if n not in have]
    problems += [f"extra feature {n!r}" for n in have if n not in want]
    problems += [
        f"feature {n!r} is {_describe(have[n])}, this session records {_describe(want[n])}"
        for n in want
        if n in have and _comparable(have[n]) != _comparable(want[n])
    ]
    if not math.isclose(store.fps, fps, rel_tol=1e-9):
        problems.append(f"it was recorded at {store.fps} Hz, this session runs at {fps} Hz")
    if problems:
        raise DatasetError(
            "cannot append: the store does not match this robot and session: "
            + "; ".join(problems)
            + " (record into a new --out store)",
            path=path,
        )
    return store


def _comparable(feature: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in feature.items() if k not in ("codec", "quality")}


def _describe(feature: dict[str, Any]) -> str:
    return f"{feature['dtype']} {tuple(feature['shape'])}"


# ------------------------------------------------------------------------------------ background writer


class BackgroundWriter:
    """Owns the store's :class:`EpisodeWriter` on a thread, so encoding and disk writes leave the loop.

    ``begin``/``add``/``discard`` only queue work; ``commit`` waits for the episode to be committed and
    returns its index. An error on the writer thread is raised by the next call.
    """

    def __init__(self, store: Any, *, flush_steps: int = 32) -> None:
        self.store = store
        self.flush_steps = flush_steps
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self.max_backlog = 0
        """The most steps that waited in the queue at once (how far writing fell behind)."""
        self._thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        writer = None
        while True:
            op, payload, done = self._queue.get()
            try:
                if self._error is not None and op != "stop":
                    continue
                if op == "begin":
                    writer = self.store.writer(flush_steps=self.flush_steps, **payload)
                elif op == "add":
                    writer.add(payload)
                elif op == "commit":
                    done.append(writer.commit(**payload))
                    writer = None
                elif op == "discard":
                    if writer is not None:
                        writer.discard()
                    writer = None
                elif op == "stop":
                    if writer is not None:
                        writer.discard()
                    return
            except BaseException as err:  # reported on the control thread by the next call
                self._error = err
                if writer is not None:
                    writer.discard()
                    writer = None
            finally:
                if done is not None:
                    done.append(None)  # wakes a waiting caller (an error shows up in self._error)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _put(self, op: str, payload: Any = None, wait: bool = False) -> list:
        self._check()
        done: list | None = [] if wait else None
        self._queue.put((op, payload, done))
        if op == "add":
            self.max_backlog = max(self.max_backlog, self._queue.qsize())
        if wait:
            while not done:
                time.sleep(0.001)
            self._check()
        return done or []

    def begin(self, **meta: Any) -> None:
        self._put("begin", meta)

    def add(self, step: dict[str, Any]) -> None:
        self._put("add", step)

    def commit(self, **meta: Any) -> int:
        return int(self._put("commit", meta, wait=True)[0])

    def discard(self) -> None:
        self._put("discard", wait=True)

    def close(self) -> None:
        """Drop an open episode and stop the thread (waits for queued work)."""
        if self._thread.is_alive():
            self._queue.put(("stop", None, None))
            self._thread.join()
