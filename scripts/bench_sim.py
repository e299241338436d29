"""How close do our rollouts get to the physics ceiling? (benchmarks/sim.json)

Compared in one run, round-robin over ``--repeats`` rounds (medians reported), every configuration
stepping Lift with a Panda, random actions, 200-step episodes with resets included:

- ceiling: raw ``mujoco.mj_step`` on the Lift model; env steps/s = mj_step rate / substeps x cores;
- gymwrapper: robosuite's own ``GymWrapper`` (stock settings) in a plain loop;
- ours_single_stock / ours_single: our env with robosuite's step / with the fast loop;
- ours_vec{1,2,4}: our subprocess vector env with 1, 2, 4 workers;
- camera rows (skip with ``--no-camera``): the same with one 84x84 agentview camera, rendered
  ``exact`` (robosuite's settings: the rows before issue 29) and ``fast`` (``render_quality="fast"``, what
  every camera path of the toolkit uses: :mod:`gipo_robot.sim.fast_render`).

Run: ``.venv/bin/python scripts/bench_sim.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

HORIZON = 200


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ceiling(steps: int) -> dict:
    """Raw mj_step rate on the Lift scene's compiled model (robot holding still, zero controls)."""
    import mujoco

    from gipo_robot.sim.robosuite_env import make_env

    env = make_env("Lift", fast=False)
    env.reset(seed=0)
    sim = env.robosuite_env.sim
    model, data = sim.model._model, sim.data._data
    substeps = env.substeps
    for _ in range(100):
        mujoco.mj_step(model, data)
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data)
    rate = steps / (time.perf_counter() - start)
    env.close()
    return {"mj_step_per_s": rate, "substeps": substeps, "env_steps_per_s_per_core": rate / substeps}


class GymWrapperRunner:
    """robosuite's GymWrapper, stock settings (hard resets), stepped in a plain loop."""

    def __init__(self, camera: bool) -> None:
        import robosuite
        from robosuite.wrappers import GymWrapper

        kwargs = dict(robots="Panda", has_renderer=False, control_freq=20, horizon=HORIZON, seed=0)
        if camera:
            kwargs.update(
                has_offscreen_renderer=True,
                use_camera_obs=True,
                camera_names=["agentview"],
                camera_heights=84,
                camera_widths=84,
            )
            keys = ["agentview_image", "robot0_proprio-state", "object-state"]
        else:
            kwargs.update(has_offscreen_renderer=False, use_camera_obs=False)
            keys = None
        self.env = GymWrapper(robosuite.make("Lift", **kwargs), keys=keys)
        self.env.reset(seed=0)
        self.rng = np.random.default_rng(0)
        self.num_envs = 1

    def run(self, steps: int) -> float:
        low, high = self.env.action_space.low, self.env.action_space.high
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = self.env.step(self.rng.uniform(low, high))
            if terminated or truncated:
                self.env.reset()
        return steps / (time.perf_counter() - start)

    def close(self) -> None:
        self.env.close()


class SingleRunner:
    """Our env, one process."""

    def __init__(self, fast: bool, camera: bool, render_quality: str = "exact") -> None:
        from gipo_robot.sim.robosuite_env import make_env

        cams = ("agentview",) if camera else ()
        self.env = make_env(
            "Lift", fast=fast, cameras=cams, horizon=HORIZON, end_on_success=False, seed=0,
            render_quality=render_quality,
        )  # fmt: skip
        self.env.reset(seed=0)
        self.rng = np.random.default_rng(0)
        self.num_envs = 1

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = self.env.step(self.rng.uniform(-1, 1, 7))
            if terminated or truncated:
                self.env.reset()
        return steps / (time.perf_counter() - start)

    def close(self) -> None:
        self.env.close()


class VectorRunner:
    """A vector env of ``workers`` envs (one per worker) on a backend; the parent draws the batch of actions
    (stands in for the policy). Also used by ``bench_scaling.py``."""

    def __init__(
        self, workers: int, camera: bool = False, backend: str = "subprocess", render_quality: str = "exact"
    ) -> None:
        from gipo_robot.sim.vector import make_vector_env

        cams = ("agentview",) if camera else ()
        options = {"workers": workers} if backend == "ray" else None
        self.env = make_vector_env(
            "Lift", workers, backend=backend, backend_options=options, cameras=cams, horizon=HORIZON,
            end_on_success=False, render_quality=render_quality,
        )  # fmt: skip
        self.env.reset(seed=0)
        self.rng = np.random.default_rng(0)
        self.num_envs = workers

    def run(self, steps: int) -> float:
        """Env steps per second over about ``steps`` env steps."""
        n = self.num_envs
        rounds = max(1, steps // n)
        start = time.perf_counter()
        for _ in range(rounds):
            self.env.step(self.rng.uniform(-1, 1, (n, 7)))
        return rounds * n / (time.perf_counter() - start)

    def close(self) -> None:
        self.env.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="Round-robin rounds (medians are reported).")
    parser.add_argument("--steps", type=int, default=400, help="Env steps per configuration per round.")
    parser.add_argument(
        "--no-camera", dest="camera", action="store_false", help="Skip the 84x84 camera rows."
    )
    parser.add_argument("--quick", action="store_true", help="Smoke run: 2 rounds of 60 steps.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sim.json"))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.steps = 2, 60
    cores = os.cpu_count() or 1
    t0 = time.perf_counter()

    print("ceiling...", file=sys.stderr)
    ceil = ceiling(20000 if not args.quick else 2000)
    ceiling_steps = ceil["env_steps_per_s_per_core"] * cores

    configs: dict[str, object] = {}
    builders = {
        "gymwrapper": lambda: GymWrapperRunner(camera=False),
        "ours_single_stock": lambda: SingleRunner(fast=False, camera=False),
        "ours_single": lambda: SingleRunner(fast=True, camera=False),
        "ours_vec1": lambda: VectorRunner(1, camera=False),
        "ours_vec2": lambda: VectorRunner(2, camera=False),
        "ours_vec4": lambda: VectorRunner(4, camera=False),
    }
    if args.camera:
        builders.update(
            {
                "gymwrapper_cam84": lambda: GymWrapperRunner(camera=True),
                "ours_single_cam84": lambda: SingleRunner(fast=True, camera=True),
                "ours_vec2_cam84": lambda: VectorRunner(2, camera=True),
                "ours_single_cam84_fast": lambda: SingleRunner(fast=True, camera=True, render_quality="fast"),
                "ours_vec2_cam84_fast": lambda: VectorRunner(2, camera=True, render_quality="fast"),
            }
        )
    for name, build in builders.items():
        print(f"building {name}...", file=sys.stderr)
        configs[name] = build()
    rates: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for runner in configs.values():  # warm-up (numba JIT, first resets)
            runner.run(20)
        for r in range(args.repeats):
            for name, runner in configs.items():
                rates[name].append(runner.run(args.steps))
            print(
                f"round {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()),
                file=sys.stderr,
            )
    finally:
        for runner in configs.values():
            runner.close()

    median = {name: float(np.median(v)) for name, v in rates.items()}
    state_rows = [k for k in median if "cam84" not in k and k != "gymwrapper"]
    best = max(state_rows, key=median.get)
    gym_rate = median["gymwrapper"]
    result = {
        "ceiling_steps_per_s": ceiling_steps,
        "ceiling_steps_per_s_per_core": ceil["env_steps_per_s_per_core"],
        "mj_step_per_s": ceil["mj_step_per_s"],
        "substeps": ceil["substeps"],
        "cores": cores,
        "gymwrapper_steps_per_s": gym_rate,
        "best_config": best,
        "best_steps_per_s": median[best],
        "best_vs_gymwrapper": median[best] / gym_rate,
        "best_vs_ceiling": median[best] / ceiling_steps,
        "median_steps_per_s": median,
        "runs_steps_per_s": rates,
        "vs_gymwrapper": {k: v / gym_rate for k, v in median.items()},
        "camera_fast_vs_exact": {
            k: median[f"{k}_fast"] / median[k]
            for k in ("ours_single_cam84", "ours_vec2_cam84")
            if k in median
        },
        "config": {
            "task": "Lift",
            "robot": "Panda",
            "horizon": HORIZON,
            "repeats": args.repeats,
            "steps": args.steps,
        },
        "machine": {"cpu": _cpu_model(), "cores": cores, "python": platform.python_version()},
        "git_commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print("| config | env steps/s (median) | vs GymWrapper | vs ceiling |")
    print("|---|---|---|---|")
    print(f"| ceiling (mj_step / {ceil['substeps']} x {cores} cores) | {ceiling_steps:.0f} | | 1.00 |")
    for name, v in median.items():
        print(f"| {name} | {v:.0f} | {v / gym_rate:.2f} | {v / ceiling_steps:.2f} |")
    print(
        f"best state-obs: {best} {median[best]:.0f} steps/s, {result['best_vs_gymwrapper']:.2f}x GymWrapper"
    )


if __name__ == "__main__":
    main()
