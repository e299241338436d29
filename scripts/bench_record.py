"""Benchmark the teleop recorder: a paced sim session with one camera, dropped frames and period error.

A fresh process records a first episode of ``--first-seconds`` (default 10 s), reported apart as
``first_episode`` (what is initialised on first use shows there: it must be timed like the rest), then the
measured episode of ``--seconds`` (default 120 s), at ``--fps`` (20 Hz) on simulated Lift with one
``--image-size`` (128) square camera, through the real recording loop (:func:`gipo_robot.loops.record.record`:
safety guard, background writer, QOI frames into a Zarr store). A scripted operator moves the arm in a slow
circle so every step does real work. Reported: dropped frames (control deadlines missed, as the recorder
counts them: a step that overruns by 1.2 periods misses one; target 0), frames lost (grid slots in which
no step started), the period error ``|t[i+1] - t[i] - 1/fps|`` at p50/p99/max from the stored timestamps,
the time one control step takes (device + guard + sim step with rendering + queueing) at p50/p99, and how far
the writer thread fell behind.

``--render fast`` is the env's ``render_quality="fast"`` (no planar reflections, no multisampling), about 2.4x
cheaper under software rendering (llvmpipe) for a mean pixel change of about 1/255; ``exact`` (the default)
renders as robosuite does.

    python scripts/bench_record.py                        # 10 s + 2 minutes, writes benchmarks/record.json
    python scripts/bench_record.py --seconds 20 --render fast --out /tmp/record_fast.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import provenance

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--first-seconds", type=float, default=10.0, help="the first episode, reported apart")
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--camera", default="agentview")
    parser.add_argument("--render", choices=("exact", "fast"), default="exact")
    parser.add_argument("--rt-priority", type=int, default=None, help="SCHED_FIFO priority of the loop")
    parser.add_argument("--out", default="benchmarks/record.json")
    args = parser.parse_args()

    from gipo_robot.datasets import EpisodeStore, validate
    from gipo_robot.hardware.pacing import realtime_priority
    from gipo_robot.loops.record import RecorderConfig, record
    from gipo_robot.sim.robot import SimRobot
    from gipo_robot.teleop.devices import DeviceCommand, TeleopDevice

    steps = round(args.seconds * args.fps)
    first_steps = round(args.first_seconds * args.fps)
    robot = SimRobot(
        "Lift",
        cameras=(args.camera,),
        image_size=args.image_size,
        horizon=steps + 10,
        end_on_success=False,
        render_quality=args.render,
    )

    class Circle(TeleopDevice):
        """Moves the end effector in a slow horizontal circle; saves the first episode after
        ``first_steps`` steps (the second ends at the time limit)."""

        name = "bench-circle"

        def __init__(self) -> None:
            self.k = -1
            self.episode = -1

        def begin_episode(self, observation) -> None:
            self.k = 0
            self.episode += 1

        def end_episode(self) -> None:
            self.k = -1

        def poll(self) -> DeviceCommand:
            if self.k < 0:
                return DeviceCommand(events=("start",))
            if self.episode == 0 and self.k == first_steps:
                return DeviceCommand(events=("save_success",))
            phase = 2 * np.pi * self.k / (4 * args.fps)  # one circle per 4 s
            self.k += 1
            return DeviceCommand(np.array([0.1 * np.cos(phase), 0.1 * np.sin(phase), 0, 0, 0, 0, -1.0]))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.zarr"
        config = RecorderConfig(
            out=str(out), episodes=2, max_seconds=args.seconds, fps=args.fps, status=False
        )
        started = time.perf_counter()
        with realtime_priority(args.rt_priority) as granted:
            result = record(robot, Circle(), config)
        wall = time.perf_counter() - started
        store = validate(EpisodeStore.open(out))
        first_stamps, stamps = (store.episode(i, keys=["timestamp"])["timestamp"] for i in (0, 1))
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    robot.close()

    period = 1.0 / args.fps
    error_ms = np.abs(np.diff(stamps) - period) * 1e3
    first_error_ms = np.abs(np.diff(first_stamps) - period) * 1e3
    first, episode = result.episodes
    summary = {
        "benchmark": "record",
        "task": "Lift",
        "camera": f"{args.camera} {args.image_size}x{args.image_size}",
        "render": args.render,
        "scheduling": f"SCHED_FIFO {args.rt_priority}" if granted else "default (SCHED_OTHER)",
        "fps_target": args.fps,
        "first_episode": {
            "seconds": args.first_seconds,
            "steps": first["steps"],
            "dropped_frames": first["dropped_frames"],
            "frames_lost": round((first_stamps[-1] - first_stamps[0]) * args.fps) + 1 - len(first_stamps),
            "period_error_ms": {
                "p50": float(np.percentile(first_error_ms, 50)),
                "p99": float(np.percentile(first_error_ms, 99)),
                "max": float(first_error_ms.max()),
            },
            "step_ms": {"p50": first["step_ms_p50"], "p99": first["step_ms_p99"]},
        },
        "seconds": args.seconds,
        "steps": episode["steps"],
        "steps_expected": steps,
        "dropped_frames": episode["dropped_frames"],
        "frames_lost": round((stamps[-1] - stamps[0]) * args.fps) + 1 - len(stamps),
        "fps_achieved": episode["fps"],
        "period_error_ms": {
            "p50": float(np.percentile(error_ms, 50)),
            "p99": float(np.percentile(error_ms, 99)),
            "max": float(error_ms.max()),
        },
        "step_ms": {"p50": episode["step_ms_p50"], "p99": episode["step_ms_p99"]},
        "max_writer_backlog_steps": result.max_writer_backlog,
        "store_bytes": size,
        "wall_s": wall,
        "load_avg_1min_at_end": os.getloadavg()[0],
        "provenance": provenance(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "provenance"}, indent=1))


if __name__ == "__main__":
    main()
