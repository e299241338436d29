"""Serial servo bus: round-trip latency of one control step (sync read + sync write) on the virtual bus.

    .venv/bin/python scripts/bench_serial_bus.py [--steps 500] [--corrupt 0.01]
        [--out benchmarks/serial_bus.json]

For each protocol (Feetech STS3215, Dynamixel XL330, 6 servos, 1 Mbps): connect :class:`SerialArm` to a
:class:`VirtualServoBus` (a pty; replies take their 1 Mbps wire time), then time ``observe()`` (one sync
read of position + velocity) + ``act()`` (one sync write of goals) back to back, ``--steps`` times, with no
faults and with ``--corrupt`` corrupted replies. Reports the median / p95 / max step time and the retries.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import provenance

from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.hardware.serial_bus import SerialArm


def run(protocol: str, steps: int, corrupt: float) -> dict:
    with (
        VirtualServoBus(protocol, faults={"corrupt_prob": corrupt, "seed": 0}) as bus,
        SerialArm.from_config(bus.robot_config()) as arm,
    ):
        arm.reset()
        action = arm.spec.to_normalized(arm.read_positions())
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            arm.observe()
            arm.act(action)
            times.append(time.perf_counter() - t0)
        stats = dict(arm.bus_stats)
        injected = bus.state()["counts"]["corrupted"]
    ms = np.array(times) * 1e3
    return {
        "protocol": protocol,
        "corrupt_prob": corrupt,
        "steps": steps,
        "step_ms_median": float(np.median(ms)),
        "step_ms_p95": float(np.percentile(ms, 95)),
        "step_ms_max": float(ms.max()),
        "injected_corrupt_replies": injected,
        "bus_stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--corrupt", type=float, default=0.01)
    parser.add_argument("--out", default="benchmarks/serial_bus.json")
    args = parser.parse_args()
    results = [run(p, args.steps, c) for p in ("feetech", "dynamixel") for c in (0.0, args.corrupt)]
    print("| protocol | corrupt | median ms | p95 ms | max ms | corrupted replies | retries | BusErrors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["bus_stats"]
        print(
            f"| {r['protocol']} | {r['corrupt_prob']:.0%} | {r['step_ms_median']:.2f} "
            f"| {r['step_ms_p95']:.2f} | {r['step_ms_max']:.1f} | {r['injected_corrupt_replies']} "
            f"| {s['retries']} | 0 |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"provenance": provenance(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
