"""The README's main job: scripted demos for Lift -> behaviour cloning -> GIPO fine-tuning on a replay of the
last K = 4 rollout batches (near on-policy at its learning rate: BENCHMARKS.md *staleness* measures approx-KL
~0.02 and GIPO's mean trust weight 0.98 there).

Every artifact lands in one run folder::

    runs/quickstart/
      demos.zarr          scripted demonstrations (the scarce-data starting point)
      bc/                 the BC policy (safetensors + JSON), loss curve
      gipo/               the fine-tuning run: metrics.csv, rollouts.zarr, checkpoint/, learning_curve.png
      summary.json        BC vs fine-tuned success (each with a 95% interval) on the same held-out seeds
      quickstart.png      learning curve with the BC start marked

``QuickstartConfig.smoke()`` is the reduced version CI runs (minutes, not a learning claim).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gipo_robot.train.finetune import FinetuneConfig

__all__ = ["QuickstartConfig", "run_quickstart"]


@dataclass
class QuickstartConfig:
    """What the quickstart runs.

    Attributes:
        task: simulated task.
        demos: scripted demonstrations to clone (few on purpose: the BC start should be mediocre).
        demo_noise: expert suboptimality in [0, 1].
        bc_steps: BC gradient steps.
        eval_episodes: episodes for the before/after comparison (same held-out seeds for both).
        finetune: the fine-tuning run's settings.
    """

    task: str = "Lift"
    demos: int = 10
    demo_noise: float = 0.3
    bc_steps: int = 1500
    eval_episodes: int = 50
    # policy_lr 1e-5 is the staleness benchmark's rate (BENCHMARKS.md). Over fine-tune seeds 0-2 on an AMD
    # EPYC the CLI default 3e-5 ended at 0.72 / 0.94 / 0.96 and 1e-5 at 1.00 / 0.88 / 0.92 (README).
    finetune: FinetuneConfig = field(
        default_factory=lambda: FinetuneConfig(
            task="Lift",
            objective="gipo",
            replay_size=4,
            env_steps=30_000,
            policy_lr=1e-5,
            eval_every=3,
            eval_episodes=20,
        )
    )

    @classmethod
    def smoke(cls) -> QuickstartConfig:
        """CI-sized: every stage runs, in about a minute; the numbers mean nothing."""
        return cls(
            demos=2,
            bc_steps=100,
            eval_episodes=2,
            finetune=FinetuneConfig(
                task="Lift",
                replay_size=2,
                env_steps=120,
                num_envs=1,
                steps_per_env=40,
                backend="sync",
                horizon=40,
                minibatch_size=16,
                critic_warmup_iters=1,
                eval_every=3,
                eval_episodes=1,
            ),
        )


def run_quickstart(config: QuickstartConfig, out: str | Path, *, log=print) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary (also written to ``out/summary.json``)."""
    from gipo_robot.loops.evaluate import evaluate
    from gipo_robot.policies import load_policy
    from gipo_robot.policies.bc import BCConfig, train_bc
    from gipo_robot.sim import make_env
    from gipo_robot.sim.experts import record_demos
    from gipo_robot.train.finetune import finetune
    from gipo_robot.train.plot import plot_runs

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ft = config.finetune
    env = make_env(config.task, horizon=ft.horizon)
    try:
        log(f"[1/4] {config.demos} scripted {config.task} demonstrations (noise {config.demo_noise})")
        store = record_demos(
            out / "demos.zarr", config.task, config.demos, config.demo_noise, seed=0, env=env, overwrite=True
        )

        log("[2/4] behaviour cloning")
        train_bc(store, BCConfig(chunk=1, steps=config.bc_steps), out=out / "bc", progress=True)
        bc_policy = load_policy(out / "bc")
        bc_eval = evaluate(bc_policy, env, config.eval_episodes, execute_steps=1)
        lo, hi = bc_eval.success_ci95
        log(f"      BC success {bc_eval.success_rate:.0%} (95% CI {lo:.0%}-{hi:.0%})")

        log(f"[3/4] {ft.objective} fine-tuning: {ft.env_steps} env steps, replay size {ft.replay_size}")
        finetune(ft, out / "bc", out / ft.objective, progress=True)

        log("[4/4] evaluating the fine-tuned policy on the same seeds")
        tuned = load_policy(out / ft.objective / "checkpoint")
        tuned_eval = evaluate(tuned, env, config.eval_episodes, execute_steps=1)
    finally:
        env.close()
    plot_runs(
        [out / ft.objective],
        out / "quickstart.png",
        labels=[f"{ft.objective} (K={ft.replay_size})"],
        references={"BC start (eval)": bc_eval.success_rate},
    )
    summary = {
        "task": config.task,
        "demos": config.demos,
        "env_steps": ft.env_steps,
        "objective": ft.objective,
        "replay_size": ft.replay_size,
        "bc": {"success_rate": bc_eval.success_rate, "success_ci95": list(bc_eval.success_ci95)},
        "finetuned": {"success_rate": tuned_eval.success_rate, "success_ci95": list(tuned_eval.success_ci95)},
        "eval_episodes": config.eval_episodes,
        "wall_s": time.perf_counter() - start,
        "config": asdict(config),
        "files": {"summary": str(out / "summary.json"), "png": str(out / "quickstart.png")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
