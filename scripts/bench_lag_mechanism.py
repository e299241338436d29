"""The mechanism check of issue 25 (item 5), no training: how each objective's minibatch gradient degrades
with the age of the data, on Lift, measured against the on-policy gradient (the robosuite counterpart of the
GridWorld study, ``gipo-robot bias-variance``).

    .venv/bin/python scripts/bench_lag_mechanism.py [--iterations 40] [--lags 0 1 2 4 8 16 32]
        [--groups 4] [--pool-batches 8] [--draws 150] [--versions-from RUN_DIR]
    .venv/bin/python scripts/bench_lag_mechanism.py --report     # redraw the PNG, print the tables

1. *Versions*: one fine-tuning run in the grid's regime (``bench_lag.py``: Lift, 2 envs x 200 steps per
   iteration, 8 epochs, minibatch 256, init log-std -2.5, replay 1, on-policy; GIPO sigma 1 at policy lr
   3e-5, seed 0, from the shipped 10-demo BC start) saves the policy (and critic) of every version 0..V into
   ``RUN_DIR/versions/vNNN`` (V = ``--iterations``; ``RUN_DIR`` = ``--versions-from``, default
   ``runs/lag_mechanism/run``). The run is resumable, and a run whose versions are all there is reused.
2. *Pools*: K = ``--groups`` reference pools R_k of ``--pool-batches`` batches each (2 envs x 200 steps,
   fresh resets, seeds of their own) collected by version V, and for each lag L, K pools A_k collected by
   version V - L with the random numbers of R_k (the same env seeds, action noise and minibatch draws: A_k
   differs from R_k only by the policy, so their difference is less noisy; the K pairs are independent,
   which keeps bias² unbiased and gives its jackknife SE). At L = 0, A_k is R_k. Advantages: GAE under
   version V's critic, as the learner computes them.
3. *Gradients* (:mod:`gipo_robot.train.gradient_study`): each arm's gradient w.r.t. all of π's parameters on
   ``--draws`` minibatches of 256 per pool (advantages normalised per minibatch, as the learner does, before
   its gradient-norm clip); bias² (cross products of the pairs, against the on-policy gradient at the
   arm's ratio level on the reference pools), variance per minibatch, MSE, each relative to ‖g*‖², and the
   scale-free cosine, projection on g* and signal-to-noise ratio (:func:`bias_variance`);
   the staleness of the pools (KL(μ_L‖π), ESS) and each objective's dead fraction and mean trust weight.
   ``no_ratio`` is the plain policy gradient on the stale data (ρ taken as 1): what no correction at all
   gives.

Writes ``benchmarks/lag_mechanism.json`` and ``benchmarks/lag_mechanism.png`` (with the CPU, library
versions and commit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from _common import provenance
from bench_lag import ARMS, STARTS

from gipo_robot.train.finetune import FinetuneConfig, finetune
from gipo_robot.train.gradient_study import (
    ON_POLICY,
    Estimator,
    Moments,
    Samples,
    bias_variance,
    gradient_moments,
    on_policy,
    samples_from_batches,
    staleness,
)

OUT = Path("benchmarks/lag_mechanism.json")
RUN = Path("runs/lag_mechanism/run")
LAGS = (0, 1, 2, 4, 8, 16, 32)
ESTIMATORS = [Estimator(arm, obj, params, level) for arm, (obj, params, level) in ARMS.items()]
NO_RATIO = replace(ON_POLICY, name="no_ratio")
POOL_SEED = 1_000_000  # pool seeds start here: none is a seed of the run's own iterations (< 10^4)


def run_config(iterations: int) -> FinetuneConfig:
    """The versions' run: the lag grid's regime at L = 0 (``bench_lag.run_cell``), GIPO sigma 1, lr 3e-5."""
    return FinetuneConfig(
        task="Lift", objective="gipo", objective_params={"sigma": 1.0}, ratio_level="step", replay_size=1,
        policy_lag=0, num_envs=2, steps_per_env=200, epochs=8, minibatch_size=256, init_log_std=-2.5,
        policy_lr=3e-5, seed=0, env_steps=iterations * 400, eval_every=10, eval_episodes=10,
    )  # fmt: skip


def bc_start() -> Path:
    """The grid's shipped BC start for Lift seed 0, else the one ``bench_staleness`` trained."""
    shipped = STARTS / "bc_Lift_10_0"
    return shipped if (shipped / "model.safetensors").exists() else Path("runs/staleness/bc_Lift_10_0")


def version_dir(run_dir: Path, version: int) -> Path:
    return run_dir / "versions" / f"v{version:03d}"


def _keep_version(run_dir: Path, version: int) -> None:
    """Copy the run's latest checkpoint's policy and critic as ``version`` (whole, or not at all)."""
    target = version_dir(run_dir, version)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "critic.safetensors"):
        shutil.copy2(run_dir / "checkpoint" / name, tmp / name)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)


def produce_versions(run_dir: Path, iterations: int) -> None:
    """Run (or resume) the versions' run until every version 0..``iterations`` is saved."""
    from gipo_robot.policies.checkpoint import load_policy, save_policy

    if all(version_dir(run_dir, v).exists() for v in range(iterations + 1)):
        return
    config, start = run_config(iterations), bc_start()
    if not version_dir(run_dir, 0).exists():  # version 0: the BC start with the run's exploration noise
        policy = load_policy(start)
        policy.set_log_std(config.init_log_std)
        save_policy(version_dir(run_dir, 0), policy, provenance={"base_policy": str(start)})
    resume = (run_dir / "checkpoint" / "trainer_state.json").exists()
    if resume:  # a kill between a checkpoint and its copy: that version is the checkpoint's
        done = json.loads((run_dir / "checkpoint" / "trainer_state.json").read_text())["progress"][
            "iteration"
        ]
        if not version_dir(run_dir, done).exists():
            _keep_version(run_dir, done)
    finetune(config, start, run_dir, resume=resume,
             on_iteration=lambda record: _keep_version(run_dir, record["iteration"]))  # fmt: skip
    missing = [v for v in range(iterations + 1) if not version_dir(run_dir, v).exists()]
    if missing:
        raise SystemExit(f"{run_dir}: versions {missing} are missing; delete the run and start again")


def collect_pool(policy, venv, batches: int, seed: int, version: int) -> list:
    """``batches`` rollout batches (2 envs x 200 steps, fresh resets) by ``policy``, from ``seed`` on."""
    from gipo_robot.train.collect import collect

    gen = torch.Generator().manual_seed(seed)
    return [collect(policy, venv, 200, seed=seed + 2 * j, version=version, generator=gen).batch
            for j in range(batches)]  # fmt: skip


def measure(run_dir: Path, target: int, lags: list[int], groups: int, pool_batches: int, draws: int) -> dict:
    """Every lag's row against version ``target`` (see the module docstring)."""
    from gipo_robot.policies.checkpoint import load_critic, load_policy
    from gipo_robot.sim import make_vector_env

    config = run_config(target)
    pi, critic = load_policy(version_dir(run_dir, target)), load_critic(version_dir(run_dir, target))
    references = {level: on_policy(level) for level in sorted({e.ratio_level for e in ESTIMATORS})}
    venv = make_vector_env(config.task, config.num_envs)

    def pool(policy, k: int, version: int) -> Samples:  # pair k: the seeds of R_k
        batches = collect_pool(policy, venv, pool_batches, POOL_SEED + 1000 * k, version)
        return samples_from_batches(batches, pi, critic, config)

    def moments(samples: Samples, estimators: list[Estimator], k: int) -> dict[str, Moments]:
        gen = torch.Generator().manual_seed(k)  # the same minibatch draws in A_k as in R_k
        return gradient_moments(pi, samples, estimators, batch_size=config.minibatch_size, draws=draws,
                                generator=gen)  # fmt: skip

    try:
        t0 = time.perf_counter()
        ref_pools = [pool(pi, k, target) for k in range(groups)]
        refs = [moments(p, list(references.values()), k) for k, p in enumerate(ref_pools)]
        print(f"reference pools: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows = []
        for lag in lags:
            t0 = time.perf_counter()
            mu = load_policy(version_dir(run_dir, target - lag))
            pools = ref_pools if lag == 0 else [pool(mu, k, target - lag) for k in range(groups)]
            got = [moments(p, [*ESTIMATORS, NO_RATIO], k) for k, p in enumerate(pools)]
            row = {"lag": lag, "behaviour_version": target - lag, "samples": sum(len(p) for p in pools),
                   **staleness(pi, Samples.cat(pools)), "objectives": {}}  # fmt: skip
            for est in [*ESTIMATORS, NO_RATIO]:
                ref = references[est.ratio_level].name
                row["objectives"][est.name] = _objective_row(
                    [g[est.name] for g in got], [r[ref] for r in refs]
                )
            rows.append(row)
            print(f"L={lag}: KL {row['kl']:.3f}, ESS {row['ess']:.3f}, {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)  # fmt: skip
    finally:
        venv.close()
    return {"reference": {name: _reference_row([r[name] for r in refs]) for name in refs[0]}, "rows": rows}


def _objective_row(got: list[Moments], refs: list[Moments]) -> dict:
    """One arm at one lag: bias² etc. (:func:`bias_variance`) and its stats, the mean over the pools."""
    stats = {k: sum(g.stats[k] for g in got) / len(got) for k in got[0].stats}
    return {
        **bias_variance(got, [r.mean for r in refs]),
        "dead_fraction": stats["frac_weight_below_1e-3"],
        "weight_mean": stats["weight_mean"],
        "trust_weight_mean": stats.get("trust_weight_mean"),
        "clip_frac": stats.get("clip_frac"),
        "minibatch_ess": stats["ess"],
        "grad_norm_mean": sum(g.norm_mean for g in got) / len(got),
    }


def _reference_row(refs: list[Moments]) -> dict:
    """‖g*‖² with its SE, the noise of one reference pool's mean, the on-policy variance per minibatch."""
    zero = torch.zeros_like(refs[0].mean)
    got = bias_variance(refs, [zero] * len(refs))  # the "bias" of g* against 0 is ‖g*‖²
    return {"norm2": got["bias2"], "norm2_se": got["bias2_se"], "pool_noise": got["pool_noise"],
            "variance": got["variance"]}  # fmt: skip


def final_success(run_dir: Path) -> float | None:
    """The versions' run's last evaluation success (on its ``eval_episodes`` episodes)."""
    from gipo_robot.train.state import read_history

    found = [r["eval_success"] for r in read_history(run_dir / "metrics.csv") if "eval_success" in r]
    return float(found[-1]) if found else None


def plot(result: dict, path: Path) -> None:
    """Against the measured KL(μ_L‖π), one line per arm (points in the order of KL, labelled by L): bias²
    (± its jackknife SE), variance and MSE relative to ‖g*‖²; the projection of E g on g*, the signal-to-noise
    ratio of one minibatch and the dead fraction. Symlog axes: KL is 0 at L = 0 and a bias² below its noise
    can be negative."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(result["rows"], key=lambda r: r["kl"])
    kl = [r["kl"] for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(18, 9))
    panels = [
        ("bias2_rel", "bias² / ‖g*‖²  (± jackknife SE)", "symlog"),
        ("variance_rel", "variance / ‖g*‖²  (one minibatch)", "log"),
        ("mse_rel", "MSE / ‖g*‖²", "log"),
        ("projection", "projection ⟨E g, g*⟩ / ‖g*‖²  (1: unbiased along g*)", "symlog"),
        ("snr", "SNR ⟨E g, g*⟩² / (‖g*‖² variance)", "log"),
        ("dead_fraction", "dead fraction (weight < 1e-3)", "linear"),
    ]
    for ax, (key, title, scale) in zip(axes.flat, panels, strict=True):
        for name in rows[0]["objectives"]:
            got = [r["objectives"][name] for r in rows]
            style = {"linestyle": "--", "color": "grey"} if name == "no_ratio" else {}
            se = [g["bias2_se_rel"] for g in got] if key == "bias2_rel" else None
            ax.errorbar(kl, [g[key] for g in got], yerr=se, marker="o", ms=4, capsize=2, label=name, **style)
        if scale == "symlog":
            ax.set_yscale("symlog", linthresh=1.0 if key == "projection" else 0.1)
        elif scale == "log":
            ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlim(-0.01, 1.5 * max(kl))
        ax.set_xlabel("KL(μ_L ‖ π) measured on the pools")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for r in rows:
        axes[1, 2].annotate(f"L={r['lag']}", (r["kl"], 0), textcoords="offset points", xytext=(0, 6),
                            fontsize=7, rotation=90)  # fmt: skip
    axes[0, 0].legend(fontsize=8)
    s = result["settings"]
    fig.suptitle(
        f"Lift: each objective's minibatch gradient (B = {s['minibatch_size']}) on data from version V − L, "
        f"against the on-policy gradient of version V = {s['target_version']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(result: dict) -> str:
    """Markdown tables: per lag the staleness of the pools, then per lag and arm the gradient's numbers
    (relative to ‖g*‖²; dead = weight < 1e-3, weight = the mean effective weight)."""
    ref = result["reference"]["on_policy"]
    lines = [
        f"‖g*‖² = {ref['norm2']:.3g} ± {ref['norm2_se']:.2g} (jackknife SE), on-policy variance per "
        f"minibatch {ref['variance'] / ref['norm2']:.0f} ‖g*‖²",
        "",
        "| L | KL(μ_L‖π) | ESS | mean \\|log ρ\\| | max ρ |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['lag']} | {r['kl']:.3g} | {r['ess']:.3g} | {r['abs_log_ratio_mean']:.3g} | "
            f"{r['ratio_max']:.3g} |"
        )
    lines += [
        "",
        "| L | arm | bias² | ± SE | variance | MSE | cosine | projection | SNR | dead | weight |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        for name, o in r["objectives"].items():
            lines.append(
                f"| {r['lag']} | {name} | {o['bias2_rel']:.3g} | {o['bias2_se_rel']:.2g} | "
                f"{o['variance_rel']:.3g} | {o['mse_rel']:.3g} | {o['cosine']:.2f} | {o['projection']:.2f} | "
                f"{o['snr']:.2g} | {o['dead_fraction']:.2f} | {o['weight_mean']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40, help="V: the target is version V")
    parser.add_argument("--lags", nargs="+", type=int, default=list(LAGS))
    parser.add_argument("--groups", type=int, default=4, help="K: independent pool pairs per lag")
    parser.add_argument("--pool-batches", type=int, default=8, help="batches of 400 env steps per pool")
    parser.add_argument("--draws", type=int, default=150, help="minibatches per pool")
    parser.add_argument(
        "--versions-from",
        type=Path,
        default=RUN,
        help=f"the run whose versions/ to use, trained or resumed there if any is missing ({RUN})",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true", help="redraw the PNG and print the tables of --out")
    args = parser.parse_args()
    if args.report:
        result = json.loads(args.out.read_text())
        plot(result, args.out.with_suffix(".png"))
        print(table(result))
        return
    if max(args.lags) > args.iterations:
        raise SystemExit(f"--lags up to {max(args.lags)} need --iterations >= {max(args.lags)}")
    torch.set_num_threads(1)  # small matrices: one thread is far faster than two on busy cores
    began = time.perf_counter()
    run_dir = args.versions_from
    produce_versions(run_dir, args.iterations)
    versions_s = time.perf_counter() - began
    result = measure(run_dir, args.iterations, args.lags, args.groups, args.pool_batches, args.draws)
    result = {
        "settings": {"task": "Lift", "target_version": args.iterations, "lags": args.lags,
                     "groups": args.groups, "pool_batches": args.pool_batches, "draws": args.draws,
                     "minibatch_size": 256,
                     "arms": {e.name: asdict(e) for e in [*ESTIMATORS, NO_RATIO]},
                     "versions_from": str(run_dir), "bc_start": str(bc_start()),
                     "run_config": asdict(run_config(args.iterations)),
                     "target_eval_success": final_success(run_dir)},
        **result, "versions_s": versions_s, "wall_s": time.perf_counter() - began, **provenance(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(table(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
