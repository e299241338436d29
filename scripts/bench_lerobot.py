"""LeRobot v3.0 export and import speed, size and image fidelity (run it in the LeRobot venv).

    HF_HUB_OFFLINE=1 .venv-lerobot/bin/python scripts/bench_lerobot.py [--episodes 10] [--steps 100]

One synthetic store (``--episodes`` × ``--steps``, a 32-d state, a 7-d action, one 84×84 camera with smooth
moving gradients) is exported to a LeRobot dataset with PNG frames and with mp4 (``--video``: whatever the
installed LeRobot encodes by default; 0.6: AV1 through libsvtav1), and each dataset is imported back.
Reported per format: export and import frames (env steps) per second (median of ``--repeats``), dataset
size on disk, the largest low-dim difference after the round trip (must be 0) and the mean/max absolute
image error in grey levels; with the LeRobot version, the video codec and decoder, and the machine.

``benchmarks/lerobot.json`` keeps one run per LeRobot version (``runs``): a new run replaces the run of the
same version and keeps the others (the 0.4.4 run came from the older LeRobot venv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import provenance

from gipo_robot.datasets import EpisodeStore, Feature, Schema
from gipo_robot.datasets.from_lerobot import lerobot_to_store, store_to_lerobot
from gipo_robot.datasets.lerobot_reader import pick_video_backend


def synthetic_store(path: Path, episodes: int, steps: int, seed: int = 0) -> EpisodeStore:
    """Smooth camera frames (moving gradients, like a rendered scene) and random low-dim features."""
    rng = np.random.default_rng(seed)
    schema = Schema(
        (
            Feature("obs.state", "float32", (32,)),
            Feature("obs.agentview_image", "uint8", (84, 84, 3), "image"),
            Feature("action", "float32", (7,)),
            Feature("reward", "float32", (), "scalar", fill=0.0),
            Feature("terminated", "bool", (), "scalar", fill=False),
            Feature("truncated", "bool", (), "scalar", fill=False),
        )
    )
    store = EpisodeStore.create(path, schema, fps=20)
    yy, xx = np.mgrid[0:84, 0:84]
    for e in range(episodes):
        t = np.arange(steps)[:, None, None]
        phase = (xx[None] + yy[None] + 2 * t + 17 * e) / 84.0
        frames = np.stack([np.sin(phase + c) for c in (0.0, 2.0, 4.0)], axis=-1)
        store.append_episode(
            {
                "obs.state": rng.normal(size=(steps, 32)).astype(np.float32),
                "obs.agentview_image": ((frames + 1) * 127.5).astype(np.uint8),
                "action": rng.uniform(-1, 1, size=(steps, 7)).astype(np.float32),
                "reward": np.zeros(steps, np.float32),
                "terminated": np.arange(steps) == steps - 1,
                "truncated": np.zeros(steps, bool),
            },
            source="demo",
            success=True,
            task="bench",
        )
    return store


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/lerobot.json")
    args = parser.parse_args()
    n_steps = args.episodes * args.steps
    root = Path(tempfile.mkdtemp(prefix="bench_lerobot_"))
    # LeRobot reads parquet files through Hugging Face datasets, which copies them into its cache: keep the
    # copies with the rest (set before lerobot, and so datasets, is first imported)
    os.environ["HF_DATASETS_CACHE"] = str(root / "hf_datasets_cache")
    try:
        store = synthetic_store(root / "src.zarr", args.episodes, args.steps)
        results, codec = {}, None
        for label, video in (("png", False), ("mp4", True)):
            export_s, import_s = [], []
            for r in range(args.repeats):
                dst, back = root / f"{label}_{r}", root / f"{label}_{r}.zarr"
                t0 = time.perf_counter()
                store_to_lerobot(store, dst, video=video)
                export_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                again = lerobot_to_store(dst, back)
                import_s.append(time.perf_counter() - t0)
            if video:
                info = json.loads((root / f"{label}_0" / "meta" / "info.json").read_text())
                codec = info["features"]["observation.images.agentview_image"]["info"]["video.codec"]
            low_dim_diff, errors = 0.0, []
            for e in range(store.n_episodes):
                a, b = store.episode(e), again.episode(e)
                for key in ("obs.state", "action"):
                    low_dim_diff = max(low_dim_diff, float(np.abs(a[key] - b[key]).max()))
                img_a = a["obs.agentview_image"].astype(np.int16)
                errors.append(np.abs(img_a - b["obs.agentview_image"].astype(np.int16)))
            err = np.concatenate([x.ravel() for x in errors])
            results[label] = {
                "export_steps_per_s": n_steps / float(np.median(export_s)),
                "import_steps_per_s": n_steps / float(np.median(import_s)),
                "dataset_mb": dir_bytes(root / f"{label}_0") / 1e6,
                "max_low_dim_diff": low_dim_diff,
                "image_error_mean": float(err.mean()),
                "image_error_max": int(err.max()),
            }
            print(label, json.dumps(results[label]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import lerobot

    run = {
        "lerobot": lerobot.__version__,
        "video_codec": codec,
        "video_decoder": pick_video_backend(None),
        "episodes": args.episodes,
        "steps": args.steps,
        "results": results,
        "provenance": provenance(),
    }
    write_run(Path(args.out), run)


def write_run(path: Path, run: dict) -> None:
    """Put ``run`` into the ``runs`` of ``path``, replacing the run of the same LeRobot version (a file in the
    one-run layout of the first version becomes the first of the runs)."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    runs = old.get("runs", [old] if "results" in old else [])
    runs = [r for r in runs if r.get("lerobot") != run["lerobot"]] + [run]
    path.write_text(json.dumps({"runs": runs}, indent=1))


if __name__ == "__main__":
    main()
