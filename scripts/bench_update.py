"""What does each objective cost per update? All objectives on the same batch, alternated, in one run.

    .venv/bin/python scripts/bench_update.py [--batch 4096] [--chunk 4] [--action-dim 7] [--rounds 30]
        [--levels step chunk]

One *update* is what the fine-tuning loop does per minibatch: Gaussian policy forward (MLP over a 40-d
observation -> a chunk of H x A action means, state-independent log-std), exact per-dimension log-probs,
the objective at the chosen ratio level, backward, Adam step. The *objective* timing isolates the loss:
forward + backward from the per-dimension log-probs (the policy network excluded), where the objectives
differ at all. Rounds alternate the objectives in a rotating order; medians and ratios to PPO-Clip are
reported. Writes ``benchmarks/update.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _common import provenance
from torch import nn
from tqdm import tqdm

from gipo_robot.objectives import OBJECTIVES, at_level


class TinyGaussianPolicy(nn.Module):
    """Stand-in for the toolkit's Gaussian chunk policy: MLP mean, state-independent log-std."""

    def __init__(self, obs_dim: int, chunk: int, action_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim
        self.mean = nn.Sequential(
            nn.Linear(obs_dim, hidden), nn.Mish(), nn.Linear(hidden, hidden), nn.Mish(),
            nn.Linear(hidden, chunk * action_dim),
        )  # fmt: skip
        self.log_std = nn.Parameter(torch.full((chunk, action_dim), -1.0))

    def log_prob_per_dim(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Exact Normal log-density per action dimension, ``(B, H, A)``."""
        mean = self.mean(obs).view(-1, self.chunk, self.action_dim)
        return torch.distributions.Normal(mean, self.log_std.exp()).log_prob(actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--action-dim", type=int, default=7)
    parser.add_argument("--obs-dim", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds; each times every cell once")
    parser.add_argument(
        "--levels", nargs="+", choices=["chunk", "step", "dim"], default=["step", "chunk"],
        help="ratio levels to time (see gipo_robot.objectives.at_level)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    args = parser.parse_args()
    torch.manual_seed(0)

    policy = TinyGaussianPolicy(args.obs_dim, args.chunk, args.action_dim)
    optim = torch.optim.Adam(policy.parameters(), lr=1e-4)
    obs = torch.randn(args.batch, args.obs_dim)
    actions = torch.randn(args.batch, args.chunk, args.action_dim) * 0.3
    with torch.no_grad():  # a behaviour policy slightly off the current one: realistic, non-trivial ratios
        logp_b = policy.log_prob_per_dim(obs, actions) + 0.05 * torch.randn(
            args.batch, args.chunk, args.action_dim
        )
    adv = torch.randn(args.batch)
    mask = torch.ones(args.batch, args.chunk, dtype=torch.bool)
    mask[:, -1] = torch.rand(args.batch) > 0.1  # some padded steps at episode ends

    def update(objective, level) -> None:
        logp = policy.log_prob_per_dim(obs, actions)
        loss, _ = objective(*at_level(logp, logp_b, adv, mask, level=level))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

    logp_fixed = policy.log_prob_per_dim(obs, actions).detach()

    def objective_only(objective, level) -> None:
        logp = logp_fixed.clone().requires_grad_(True)
        loss, _ = objective(*at_level(logp, logp_b, adv, mask, level=level))
        loss.backward()

    names = list(OBJECTIVES)
    cells = [(name, level) for level in args.levels for name in names]
    times = {cell: {"update": [], "objective": []} for cell in cells}
    for name, level in cells:  # warm-up
        for _ in range(3):
            update(OBJECTIVES[name], level)
            objective_only(OBJECTIVES[name], level)
    for r in tqdm(range(args.rounds), desc="rounds"):
        for name, level in cells[r % len(cells) :] + cells[: r % len(cells)]:  # rotate the order
            for kind, fn in (("update", update), ("objective", objective_only)):
                t0 = time.perf_counter()
                fn(OBJECTIVES[name], level)
                times[name, level][kind].append(time.perf_counter() - t0)

    result: dict = {"config": vars(args) | {"out": str(args.out), "threads": torch.get_num_threads()}}
    result["levels"] = {}
    print("| ratio level | objective | update ms (median) | ratio to PPO-Clip | objective-only ms | ratio |")
    print("|---|---|---|---|---|---|")
    for level in args.levels:
        med = {n: {k: statistics.median(v) * 1e3 for k, v in times[n, level].items()} for n in names}
        ratio = {n: {k: med[n][k] / med["ppo_clip"][k] for k in ("update", "objective")} for n in names}
        result["levels"][level] = {"median_ms": med, "ratio_to_ppo_clip": ratio}
        for n in names:
            upd, obj = med[n]["update"], med[n]["objective"]
            r_upd, r_obj = ratio[n]["update"], ratio[n]["objective"]
            print(f"| {level} | {n} | {upd:.2f} | {r_upd:.3f} | {obj:.3f} | {r_obj:.3f} |")
    result.update(provenance())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "update.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
