"""Reproduce the GIPO paper's analytic bias–variance study on a 2×2 GridWorld (exact enumeration).

    .venv/bin/python scripts/reproduce_bias_variance.py [--pairs 500] [--out benchmarks]

Writes ``benchmarks/bias_variance.json`` (every estimator's bias², variance and MSE per divergence level) and
``benchmarks/bias_variance.png`` (bias–variance frontiers, and the best MSE per family vs staleness), and
prints the summary table that goes into BENCHMARKS.md. See :mod:`gipo_robot.bias_variance` for the method.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import provenance
from tqdm import tqdm

from gipo_robot.bias_variance import StudyConfig, plot_frontiers, run_study


def summary_table(result: dict) -> str:
    """Markdown table: per divergence level, each family's best MSE (N=16) and GIPO's frontier position."""
    families = list(result["config"]["families"])
    lines = [
        "| δ | KL(μ‖π) | "
        + " | ".join(f"best MSE {f}" for f in families)
        + " | baselines above GIPO frontier |",
        "|---|---|" + "---|" * len(families) + "---|",
    ]
    for lv in result["levels"]:
        best = lv["best_mse"]["16"]
        cells = " | ".join(f"{best[f]:.3g}" for f in families)
        frac = lv["frac_baselines_above_gipo_frontier"]
        lines.append(f"| {lv['delta']} | {lv['kl_mean']:.3f} | {cells} | {frac:.0%} |")
    return "\n".join(lines)


def frontier_ratios(result: dict) -> str:
    """Per level and baseline family: GIPO's variance at the baseline's bias over the baseline's variance."""
    import numpy as np

    rows = ["| δ | " + " | ".join(f for f in result["config"]["families"] if f != "gipo") + " |"]
    rows.append("|---|" + "---|" * (len(result["config"]["families"]) - 1))
    for lv in result["levels"]:
        cells = []
        for fam in result["config"]["families"]:
            if fam == "gipo":
                continue
            ratios = [p["gipo_variance_ratio"] for p in lv["points"] if p["family"] == fam]
            finite = [r for r in ratios if np.isfinite(r)]
            cells.append(f"{np.median(finite):.2f}" if finite else "n/a (unbiased)")
        rows.append(f"| {lv['delta']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500, help="random (π, μ) pairs per divergence level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    args = parser.parse_args()

    config = StudyConfig(n_pairs=args.pairs, seed=args.seed)
    start = time.perf_counter()
    with tqdm(total=len(config.deltas), desc="divergence levels") as bar:
        result = run_study(config, progress=lambda done: bar.update(done - bar.n))
    result["wall_s"] = time.perf_counter() - start
    result.update(provenance())

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bias_variance.json").write_text(json.dumps(result, indent=1))
    plot_frontiers(result, str(args.out / "bias_variance.png"))
    print(summary_table(result))
    print()
    print("GIPO variance at the same bias / baseline variance (median over each sweep; < 1: GIPO below)")
    print(frontier_ratios(result))


if __name__ == "__main__":
    main()
