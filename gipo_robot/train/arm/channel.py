"""The run directory as the channel between the actor and the learner.

Everything the two processes exchange goes through files of the run directory, each written atomically
(a temporary name, then a rename), so either side may be killed at any moment and the other reads the
last complete state::

    RUN/
      config.json          the run's ArmConfig (both sides read it)
      episodes.zarr        actor -> learner: committed episodes (the actor is the only writer)
      weights/vNNNNNN/     learner -> actor: published policy versions (safetensors + JSON checkpoints)
      weights/latest.json  learner -> actor: {"version", "path", "time"}, written after the checkpoint
      learner.json         the learner's heartbeat: version, updates, state (running/finished/failed)
      actor.json           the actor's heartbeat: episodes, steps, robot time, finished

Neither side ever waits on the other: the actor reads ``latest.json`` when it may swap weights and
carries on with what it has when nothing new is there; the learner reads whatever episodes have been
committed. Running the actor on the robot's computer and the learner elsewhere is a matter of giving both
the same directory (a shared mount); :class:`RunChannel` is the one class to re-implement for another
transport.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["RunChannel"]

KEEP_VERSIONS = 4
"""Published versions kept on disk besides version 0 (older ones are removed: an actor that is loading one is
at most this far behind)."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):  # absent, or (on a shared mount) caught mid-replace
        return None


class RunChannel:
    """Reads and writes the exchange files of one run directory (see the module docstring).

    Args:
        run: the run directory.
    """

    def __init__(self, run: str | Path) -> None:
        self.run = Path(run)
        self.weights = self.run / "weights"

    @property
    def store_path(self) -> Path:
        """The episode store both sides use."""
        return self.run / "episodes.zarr"

    # ------------------------------------------------------------------------------------------ weights

    def publish(self, policy: Any, version: int, provenance: dict[str, Any] | None = None) -> Path:
        """Write ``policy`` as version ``version``, then point ``latest.json`` at it; prune old versions."""
        from gipo_robot.policies.checkpoint import save_policy

        self.weights.mkdir(parents=True, exist_ok=True)
        path = self.weights / f"v{version:06d}"
        save_policy(path, policy, provenance={"version": version, **(provenance or {})})
        _write_json(
            self.weights / "latest.json", {"version": version, "path": path.name, "time": time.time()}
        )
        versions = sorted(p for p in self.weights.glob("v[0-9]*") if p.is_dir() and p.name != "v000000")
        for old in versions[:-KEEP_VERSIONS]:  # version 0, the starting policy, stays
            shutil.rmtree(old, ignore_errors=True)
        return path

    def latest(self) -> tuple[int, Path] | None:
        """``(version, checkpoint directory)`` of the newest published version, or None."""
        data = _read_json(self.weights / "latest.json")
        if data is None:
            return None
        return int(data["version"]), self.weights / data["path"]

    # ---------------------------------------------------------------------------------------- heartbeats

    def beat(self, side: str, **state: Any) -> None:
        """Write ``side``'s heartbeat (``"learner"`` or ``"actor"``): ``state`` plus its pid and the time."""
        _write_json(self.run / f"{side}.json", {**state, "pid": os.getpid(), "time": time.time()})

    def heartbeat(self, side: str) -> dict[str, Any]:
        """``side``'s last heartbeat (``{}`` if it never wrote one), with ``age_s`` since it was written."""
        data = _read_json(self.run / f"{side}.json") or {}
        if "time" in data:
            data["age_s"] = time.time() - float(data["time"])
        return data
