"""The Zarr episode store against a robomimic-layout HDF5 file read with h5py, same episodes, one run.

    .venv/bin/python scripts/bench_store.py [--episodes 50] [--steps 200] [--repeats 5] [--batches 10]
        [--image-codecs qoi[,png,...]] [--out benchmarks/store.json]

The issue's full size is ``--episodes 200 --steps 200``. Each episode: ``obs.state`` 32-d float32,
``action`` 7-d float32, ``reward`` float32, ``done``, one 84x84x3 uint8 camera. Camera frames are
synthetic but camera-like (smooth gradients, moving objects, +-3 sensor noise), not white noise, which
no image codec compresses.

Methods:

- ``zarr-<codec>``: :class:`EpisodeStore` (one frame per chunk with that image codec, Blosc/Zstd
  low-dim chunks), one method per ``--image-codecs`` entry; read with its direct chunk-file reader.
- ``hdf5``: robomimic's layout (``data/demo_N/{obs/*, actions, rewards, dones}``) as robomimic writes
  it by default, uncompressed, contiguous datasets.
- ``hdf5-gzip``: the same with gzip level 4 chunked datasets (robomimic's ``--compress``).

Measures, alternating the methods in a rotating order for ``--repeats`` rounds (medians reported):
write MB/s (raw episode bytes / wall time, files fresh each round, then ``sync``), size
(``size_bytes``: the bytes of every file; ``disk_bytes``: the blocks allocated to every file and
folder, as ``du`` counts them, which is what the disk holds: small files round up to 4 KiB blocks and
every folder takes one), and random-minibatch reads per second after one untimed batch per method,
every timed batch freshly drawn: 256 transitions (state, image, action at uniformly random steps) and
256 action chunks of H=8 (state and image at the anchor step, 8 actions edge-padded at the episode
end). The h5py readers group the
batch by demo and read each demo's rows with one sorted fancy-index per dataset (chunks: one
contiguous slice per sample), which is faster than robomimic's per-item reads. The page cache is warm
for every method. Writes ``benchmarks/store.json`` (``results`` per method, ``ratios`` of each zarr
method over each HDF5 baseline) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _common import provenance

from gipo_robot.datasets import EpisodeStore, Feature, Schema
from gipo_robot.datasets.sampler import EpisodeSampler, SamplerConfig
from gipo_robot.datasets.schema import DEFAULT_IMAGE_CODEC, IMAGE_CODECS

STATE, ACTION, IMAGE, BATCH, HORIZON = 32, 7, (84, 84, 3), 256, 8
BASELINES = ("hdf5", "hdf5-gzip")


def make_episode(seed: int, steps: int) -> dict[str, np.ndarray]:
    """One synthetic episode: ``obs.state`` (T, 32), ``obs.agentview_image`` (T, 84, 84, 3) uint8,
    ``action`` (T, 7), ``reward`` (T,), ``done`` (T,) int64."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None, None]
    yy, xx = np.mgrid[0 : IMAGE[0], 0 : IMAGE[1]]
    base = np.stack([yy * 2 + 40, xx * 2 + 30, (yy + xx) + 60], -1)[None].astype(np.int16)
    frames = np.repeat(base, steps, axis=0)
    for colour in rng.integers(0, 256, size=(3, 3)):
        cy = (20 + 40 * np.sin(t[:, 0, 0] / 25 + rng.uniform(0, 6))).astype(int) % 70
        cx = (20 + 40 * np.cos(t[:, 0, 0] / 30 + rng.uniform(0, 6))).astype(int) % 70
        for k in range(steps):
            frames[k, cy[k] : cy[k] + 14, cx[k] : cx[k] + 14] = colour
    frames += rng.integers(-3, 4, size=frames.shape, dtype=np.int16)
    return {
        "obs.state": np.cumsum(rng.normal(size=(steps, STATE)), 0).astype(np.float32) * 0.01,
        "obs.agentview_image": np.clip(frames, 0, 255).astype(np.uint8),
        "action": rng.uniform(-1, 1, size=(steps, ACTION)).astype(np.float32),
        "reward": (np.arange(steps) == steps - 1).astype(np.float32),
        "done": (np.arange(steps) == steps - 1).astype(np.int64),
    }


def schema(codec: str) -> Schema:
    return Schema(
        (
            Feature("obs.state", "float32", (STATE,)),
            Feature("obs.agentview_image", "uint8", IMAGE, "image", codec=codec),
            Feature("action", "float32", (ACTION,)),
            Feature("reward", "float32", (), "scalar"),
            Feature("done", "int64", (), "scalar"),
        )
    )


def dir_size(path: Path) -> int:
    """Bytes of every file under ``path`` (or of the file ``path``)."""
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk to ``path`` and everything under it, folders included (``du -s -B1``)."""
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    return sum(p.lstat().st_blocks * 512 for p in entries)


# ---------------------------------------------------------------------------- writers


def write_zarr(path: Path, episodes: list[dict], codec: str) -> None:
    store = EpisodeStore.create(path, schema(codec), fps=20, overwrite=True)
    for ep in episodes:
        store.append_episode(ep, success=True)


def write_hdf5(path: Path, episodes: list[dict], gzip: bool) -> None:
    opts = {"compression": "gzip", "compression_opts": 4} if gzip else {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Synthetic", "type": 1, "env_kwargs": {}})
        data.attrs["total"] = sum(len(ep["action"]) for ep in episodes)
        for i, ep in enumerate(episodes):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(ep["action"])
            demo.create_dataset("obs/state", data=ep["obs.state"], **opts)
            image_opts = {**opts, "chunks": (1, *IMAGE)} if gzip else {}
            demo.create_dataset("obs/agentview_image", data=ep["obs.agentview_image"], **image_opts)
            demo.create_dataset("actions", data=ep["action"], **opts)
            demo.create_dataset("rewards", data=ep["reward"], **opts)
            demo.create_dataset("dones", data=ep["done"], **opts)


# ---------------------------------------------------------------------------- readers


class H5Reader:
    """Random minibatches from a robomimic-layout file, grouped by demo (sorted fancy indexing)."""

    def __init__(self, path: Path, lengths: np.ndarray) -> None:
        self.file = h5py.File(path, "r")
        self.demos = [self.file[f"data/demo_{i}"] for i in range(len(lengths))]
        self.lengths = lengths

    def transitions(self, ep: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        out = {
            "state": np.empty((ep.size, STATE), np.float32),
            "image": np.empty((ep.size, *IMAGE), np.uint8),
            "action": np.empty((ep.size, ACTION), np.float32),
        }
        for e in np.unique(ep):
            pos = np.flatnonzero(ep == e)
            steps, inverse = np.unique(t[pos], return_inverse=True)
            demo = self.demos[e]
            out["state"][pos] = demo["obs/state"][steps][inverse]
            out["image"][pos] = demo["obs/agentview_image"][steps][inverse]
            out["action"][pos] = demo["actions"][steps][inverse]
        return out

    def chunks(self, ep: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        out = self.transitions_obs(ep, t)
        actions = np.empty((ep.size, HORIZON, ACTION), np.float32)
        for k in range(ep.size):
            demo, length = self.demos[ep[k]], self.lengths[ep[k]]
            rows = demo["actions"][t[k] : min(t[k] + HORIZON, length)]
            actions[k, : len(rows)] = rows
            actions[k, len(rows) :] = rows[-1]  # edge padding
        out["action"] = actions
        return out

    def transitions_obs(self, ep: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        out = {
            "state": np.empty((ep.size, STATE), np.float32),
            "image": np.empty((ep.size, *IMAGE), np.uint8),
        }
        for e in np.unique(ep):
            pos = np.flatnonzero(ep == e)
            steps, inverse = np.unique(t[pos], return_inverse=True)
            out["state"][pos] = self.demos[e]["obs/state"][steps][inverse]
            out["image"][pos] = self.demos[e]["obs/agentview_image"][steps][inverse]
        return out


class ZarrReader:
    def __init__(self, path: Path) -> None:
        self.store = EpisodeStore.open(path, "r")
        self.ends = self.store.episode_ends
        keys = ("obs.state", "obs.agentview_image")
        self.sampler = EpisodeSampler(
            self.store, SamplerConfig(horizon=HORIZON, obs_keys=keys, step_keys=("action",))
        )

    def transitions(self, ep: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.where(ep > 0, self.ends[ep - 1], 0) + t
        return self.store.read_rows(rows, ["obs.state", "obs.agentview_image", "action"])

    def chunks(self, ep: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        # the sampler's anchors are the global rows, in order
        return self.sampler.sample(np.where(ep > 0, self.ends[ep - 1], 0) + t)


# ---------------------------------------------------------------------------- the run


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_reads(reader, warmup: tuple, transitions: list, chunks: list) -> tuple[float, float, tuple]:
    """Seconds to read every batch of ``transitions`` as transitions, then every batch of ``chunks`` (other
    rows: none is read twice) as chunks; and the values of the first batch of each.

    The ``warmup`` batch is read first, untimed, as a training loop's first batch: it opens files,
    starts threads, fills the low-dim chunk cache.
    """
    reader.transitions(*warmup)
    reader.chunks(*warmup)
    tr_s = timed(lambda: [reader.transitions(e, t) for e, t in transitions])
    ch_s = timed(lambda: [reader.chunks(e, t) for e, t in chunks])
    return tr_s, ch_s, (reader.transitions(*transitions[0]), reader.chunks(*chunks[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10, help="minibatches timed per method and round")
    parser.add_argument(
        "--image-codecs",
        default=DEFAULT_IMAGE_CODEC,
        help=f"comma-separated zarr image codecs to compare, each of {IMAGE_CODECS}",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/store.json"))
    parser.add_argument(
        "--workdir", type=Path, default=None, help="folder for the files (default: a temp dir)"
    )
    args = parser.parse_args()

    codecs = [c.strip() for c in args.image_codecs.split(",") if c.strip()]
    unknown = sorted(set(codecs) - set(IMAGE_CODECS))
    if unknown or not codecs:
        parser.error(f"--image-codecs: unknown {unknown}; choose from {IMAGE_CODECS}")
    methods = (*[f"zarr-{c}" for c in codecs], *BASELINES)
    print(f"generating {args.episodes} x {args.steps} steps ...", flush=True)
    episodes = [make_episode(i, args.steps) for i in range(args.episodes)]
    raw_bytes = sum(v.nbytes for ep in episodes for v in ep.values())
    lengths = np.array([len(ep["action"]) for ep in episodes])
    work = Path(tempfile.mkdtemp(prefix="bench_store_", dir=args.workdir))
    paths = {f"zarr-{c}": work / f"store_{c}.zarr" for c in codecs}
    paths.update({"hdf5": work / "demo.hdf5", "hdf5-gzip": work / "demo_gzip.hdf5"})
    writers = {f"zarr-{c}": (lambda c=c: write_zarr(paths[f"zarr-{c}"], episodes, c)) for c in codecs}
    writers["hdf5"] = lambda: write_hdf5(paths["hdf5"], episodes, gzip=False)
    writers["hdf5-gzip"] = lambda: write_hdf5(paths["hdf5-gzip"], episodes, gzip=True)
    write_s: dict[str, list[float]] = {m: [] for m in methods}
    read_tr: dict[str, list[float]] = {m: [] for m in methods}
    read_ch: dict[str, list[float]] = {m: [] for m in methods}
    rng = np.random.default_rng(0)
    try:
        for r in range(args.repeats):
            order = methods[r % len(methods) :] + methods[: r % len(methods)]
            for m in order:
                if paths[m].exists():
                    shutil.rmtree(paths[m]) if paths[m].is_dir() else paths[m].unlink()
                write_s[m].append(timed(writers[m]))
            os.sync()  # no background writeback of the fresh files while the reads are timed
            readers = {
                m: H5Reader(paths[m], lengths) if m in BASELINES else ZarrReader(paths[m]) for m in methods
            }
            # the same random batches for every method: one warm-up, then fresh ones per kind
            ends = np.cumsum(lengths)
            batches = []
            for _ in range(1 + 2 * args.batches):
                rows = rng.integers(0, lengths.sum(), size=BATCH)
                ep = np.searchsorted(ends, rows, side="right")
                batches.append((ep, rows - np.where(ep > 0, ends[ep - 1], 0)))
            warmup, tr_batches, ch_batches = (
                batches[0],
                batches[1 : 1 + args.batches],
                batches[1 + args.batches :],
            )
            check = {}
            for m in order:
                tr_s, ch_s, check[m] = time_reads(readers[m], warmup, tr_batches, ch_batches)
                read_tr[m].append(args.batches / tr_s)
                read_ch[m].append(args.batches / ch_s)
            h_tr, h_ch = check["hdf5"]
            for m in methods:  # every method reads the same values (images: lossless codecs)
                if m in BASELINES:
                    v_tr, v_ch = check[m]
                    np.testing.assert_array_equal(v_tr["image"], h_tr["image"])
                    np.testing.assert_array_equal(v_ch["action"], h_ch["action"])
                    continue
                z_tr, z_ch = check[m]
                if m != "zarr-jpeg":
                    np.testing.assert_array_equal(z_tr["obs.agentview_image"], h_tr["image"])
                    np.testing.assert_array_equal(z_ch["obs.agentview_image"][:, 0], h_ch["image"])
                np.testing.assert_array_equal(z_tr["action"], h_tr["action"])
                np.testing.assert_array_equal(z_ch["action"], h_ch["action"])
            for reader in readers.values():
                if isinstance(reader, H5Reader):
                    reader.file.close()
            print(
                f"round {r + 1}/{args.repeats}: "
                + ", ".join(f"{m} {read_tr[m][-1]:.1f}/{read_ch[m][-1]:.1f} batch/s" for m in methods),
                flush=True,
            )
        sizes = {m: dir_size(paths[m]) for m in methods}
        disk = {m: disk_usage(paths[m]) for m in methods}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {}
    for m in methods:
        results[m] = {
            "write_mb_s": raw_bytes / 1e6 / statistics.median(write_s[m]),
            "size_bytes": sizes[m],
            "disk_bytes": disk[m],
            "transitions_batches_s": statistics.median(read_tr[m]),
            "chunks_batches_s": statistics.median(read_ch[m]),
            "write_s_all": write_s[m],
            "transitions_batches_s_all": read_tr[m],
            "chunks_batches_s_all": read_ch[m],
        }
    ratios = {
        f"{m} / {base}": {
            "transitions": results[m]["transitions_batches_s"] / results[base]["transitions_batches_s"],
            "chunks": results[m]["chunks_batches_s"] / results[base]["chunks_batches_s"],
            "size": results[m]["size_bytes"] / results[base]["size_bytes"],
            "disk": results[m]["disk_bytes"] / results[base]["disk_bytes"],
            "write": results[m]["write_mb_s"] / results[base]["write_mb_s"],
        }
        for m in methods
        if m not in BASELINES
        for base in BASELINES
    }
    report = {
        "config": {
            "episodes": args.episodes,
            "steps": args.steps,
            "state_dim": STATE,
            "action_dim": ACTION,
            "image": list(IMAGE),
            "image_codecs": codecs,
            "batch": BATCH,
            "horizon": HORIZON,
            "repeats": args.repeats,
            "batches_per_round": args.batches,
            "raw_bytes": raw_bytes,
        },
        "results": results,
        "ratios": ratios,
        **provenance(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"wrote {args.out}")


def table(report: dict) -> str:
    c = report["config"]
    lines = [
        f"{c['episodes']} episodes x {c['steps']} steps (32-d state, 7-d action, one 84x84x3 camera, "
        f"{c['raw_bytes'] / 1e6:.0f} MB raw); medians of {c['repeats']} alternating rounds; "
        f"reads: minibatches of {c['batch']} per second",
        "",
        "| method | write MB/s | files MB | on disk MB | 256 transitions /s | 256 chunks H=8 /s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m, r in report["results"].items():
        lines.append(
            f"| {m} | {r['write_mb_s']:.0f} | {r['size_bytes'] / 1e6:.1f} | {r['disk_bytes'] / 1e6:.1f} | "
            f"{r['transitions_batches_s']:.1f} | {r['chunks_batches_s']:.1f} |"
        )
    for name, ratio in report["ratios"].items():
        lines.append(
            f"| {name} | {ratio['write']:.2f}x | {ratio['size']:.2f}x | {ratio['disk']:.2f}x | "
            f"{ratio['transitions']:.2f}x | {ratio['chunks']:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
