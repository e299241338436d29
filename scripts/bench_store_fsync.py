"""What making an episode commit durable costs: commit time with ``fsync`` (the default) and without.

    .venv/bin/python scripts/bench_store_fsync.py [--commits 50] [--steps 100] [--dir DIR]
        [--out benchmarks/store_fsync.json]

Three ways of writing, each into a fresh store per setting, the two settings alternating commit by commit
(``store.durable`` True / False) so disk load hits both alike:

- ``low_dim``: ``append_episode`` of ``--steps`` steps of ``obs.state`` 32-d, ``action`` 7-d float32,
  ``reward``, ``done``: a commit fsyncs ~10 chunk files, 9 metadata rows, the arrays' ``zarr.json`` and
  the folders.
- ``camera``: the same plus one 84x84x3 camera, one chunk file per frame: ``--steps`` more files per commit.
- ``streamed``: the ``low_dim`` episode through :class:`EpisodeWriter` (``flush_steps=32``), as ``record``
  and ``deploy`` write. Flushes are not fsynced (the commit is), so ``flush_*`` should match: they show
  what a flush costs in a control loop that writes in line. Reported per ``add`` that flushed, and per
  commit.

Prints medians and 90th percentiles in ms, and writes them with provenance to ``--out``. ``--dir`` is where
the stores go (default: a temporary folder under the current directory, i.e. on the disk you will record
to; fsync on a tmpfs costs nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import provenance

from gipo_robot.datasets import EpisodeStore, Feature, Schema


def schema(camera: bool) -> Schema:
    features = [
        Feature("obs.state", "float32", (32,)),
        Feature("action", "float32", (7,)),
        Feature("reward", "float32", (), "scalar"),
        Feature("done", "bool", (), "scalar"),
    ]
    if camera:
        features.append(Feature("obs.cam", "uint8", (84, 84, 3), "image"))
    return Schema(tuple(features))


def episode(seed: int, steps: int, camera: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ep = {
        "obs.state": rng.normal(size=(steps, 32)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(steps, 7)).astype(np.float32),
        "reward": rng.normal(size=steps).astype(np.float32),
        "done": np.arange(steps) == steps - 1,
    }
    if camera:
        ramp = np.linspace(0, 200, 84, dtype=np.float32)[None, :, None, None]
        noise = rng.integers(0, 8, size=(steps, 84, 84, 3))
        ep["obs.cam"] = np.clip(ramp + noise + np.arange(steps)[:, None, None, None], 0, 255).astype(np.uint8)
    return ep


def ms(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(1e3 * statistics.median(values), 3),
        "p90_ms": round(1e3 * float(np.quantile(values, 0.9)), 3),
        "n": len(values),
    }


def bench_appends(root: Path, commits: int, steps: int, camera: bool) -> dict[str, dict]:
    stores = {}
    for durable in (True, False):
        path = root / f"append-{camera}-{durable}.zarr"
        stores[durable] = EpisodeStore.create(path, schema(camera), fps=20)
        stores[durable].durable = durable
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(commits):
        ep = episode(i, steps, camera)
        for durable in (True, False) if i % 2 else (False, True):
            t0 = time.perf_counter()
            stores[durable].append_episode(ep, success=bool(i % 2))
            times[durable].append(time.perf_counter() - t0)
    return {"fsync": ms(times[True]), "no_fsync": ms(times[False])}


def bench_streamed(root: Path, commits: int, steps: int) -> dict[str, dict]:
    stores = {}
    for durable in (True, False):
        stores[durable] = EpisodeStore.create(root / f"stream-{durable}.zarr", schema(False), fps=20)
        stores[durable].durable = durable
    flushes: dict[bool, list[float]] = {True: [], False: []}
    commit: dict[bool, list[float]] = {True: [], False: []}
    for i in range(commits):
        ep = episode(i, steps, False)
        for durable in (True, False) if i % 2 else (False, True):
            w = stores[durable].writer(flush_steps=32, source="teleop")
            for t in range(steps):
                t0 = time.perf_counter()
                w.add({k: v[t] for k, v in ep.items()})
                if (t + 1) % 32 == 0:
                    flushes[durable].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            w.commit(success=True)
            commit[durable].append(time.perf_counter() - t0)
    return {
        "flush_fsync": ms(flushes[True]),
        "flush_no_fsync": ms(flushes[False]),
        "commit_fsync": ms(commit[True]),
        "commit_no_fsync": ms(commit[False]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/store_fsync.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or Path.cwd(), prefix="bench-fsync-") as tmp:
        root = Path(tmp)
        results = {
            "low_dim": bench_appends(root, args.commits, args.steps, camera=False),
            "camera": bench_appends(root, args.commits, args.steps, camera=True),
            "streamed": bench_streamed(root, args.commits, args.steps),
        }
    out = {"config": vars(args) | {"dir": str(args.dir), "out": str(args.out)}, "results": results}
    out["provenance"] = provenance()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"| {args.steps}-step episodes | median ms | p90 ms |\n|---|---|---|")
    for name, rows in results.items():
        for key, row in rows.items():
            print(f"| {name} {key} | {row['median_ms']:.2f} | {row['p90_ms']:.2f} |")


if __name__ == "__main__":
    main()
