"""Reproduce the bias–variance study on a 2×2 GridWorld (exact enumeration), ours or the paper's layout.

    .venv/bin/python scripts/reproduce_bias_variance.py [--setup ours] [--pairs 500] [--out benchmarks]
    .venv/bin/python scripts/reproduce_bias_variance.py --setup authors

``--setup ours`` (default) writes ``benchmarks/bias_variance.json`` (every estimator's bias², variance and MSE
per divergence level over random target/behaviour pairs) and ``benchmarks/bias_variance.png`` (frontiers, and
the best MSE per family vs staleness). ``--setup authors`` writes ``benchmarks/bias_variance_authors.*``: the
GIPO paper's layout (3 hand-set targets × 7 behaviours, one logit, N = 1). Both print the summary tables that
go into BENCHMARKS.md. See :mod:`gipo_robot.bias_variance` for the method.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import provenance
from tqdm import tqdm

from gipo_robot.bias_variance import AuthorsStudyConfig, StudyConfig, plot_study, run_authors_study, run_study


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


def authors_table(result: dict) -> str:
    """Markdown: per (target, behaviour), each family's best MSE (N=1), GIPO's best over the best baseline's,
    and the share of baseline points above GIPO's frontier."""
    families = list(result["config"]["families"])
    n = str(result["config"]["batch_size"])
    lines = [
        "| target | δ | KL(μ‖π) | "
        + " | ".join(f"best MSE {f}" for f in families)
        + " | GIPO / best baseline | baselines above GIPO frontier |",
        "|---|---|---|" + "---|" * len(families) + "---|---|",
    ]
    for lv in result["levels"]:
        best = lv["best_mse"][n]
        baseline = min(v for f, v in best.items() if f != "gipo")
        cells = " | ".join(f"{best[f]:.3g}" for f in families)
        frac = lv["frac_baselines_above_gipo_frontier"]
        lines.append(
            f"| {lv['target']} | {lv['delta']} | {lv['kl_mean']:.3f} | {cells} | "
            f"{best['gipo'] / baseline:.2f} | {frac:.0%} |"
        )
    return "\n".join(lines)


def authors_family_shares(result: dict) -> str:
    """Markdown: per baseline family, the share of its (setting, pair) points above GIPO's frontier."""
    import numpy as np

    rows = ["| baseline | points above GIPO's frontier | median GIPO variance ratio |", "|---|---|---|"]
    for fam in result["config"]["families"]:
        if fam == "gipo":
            continue
        pts = [p for lv in result["levels"] for p in lv["points"] if p["family"] == fam]
        above = np.mean([p["gipo_variance_ratio"] < 1 for p in pts])
        finite = [p["gipo_variance_ratio"] for p in pts if np.isfinite(p["gipo_variance_ratio"])]
        median = f"{np.median(finite):.2f}" if finite else "n/a (unbiased)"
        rows.append(f"| {fam} | {above:.0%} of {len(pts)} | {median} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=("ours", "authors"), default="ours")
    parser.add_argument("--pairs", type=int, default=500, help="ours: random (π, μ) pairs per level")
    parser.add_argument("--seed", type=int, default=0, help="ours: seed of the random pairs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    args = parser.parse_args()

    start = time.perf_counter()
    if args.setup == "authors":
        result = run_authors_study(AuthorsStudyConfig())
    else:
        config = StudyConfig(n_pairs=args.pairs, seed=args.seed)
        with tqdm(total=len(config.deltas), desc="divergence levels") as bar:
            result = run_study(config, progress=lambda done: bar.update(done - bar.n))
    result["wall_s"] = time.perf_counter() - start
    result.update(provenance())

    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bias_variance_authors" if args.setup == "authors" else "bias_variance"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    plot_study(result, str(args.out / f"{stem}.png"))
    if args.setup == "authors":
        print(authors_table(result))
        print()
        print("Each baseline's (setting, pair) points against GIPO's frontier (ratio < 1: GIPO below)")
        print(authors_family_shares(result))
        return
    print(summary_table(result))
    print()
    print("GIPO variance at the same bias / baseline variance (median over each sweep; < 1: GIPO below)")
    print(frontier_ratios(result))


if __name__ == "__main__":
    main()
