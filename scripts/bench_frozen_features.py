"""What does a camera policy's update round cost, with the frozen encoder's embeddings cached or not?

    .venv/bin/python scripts/bench_frozen_features.py [--rounds 3] [--scenarios sim arm]

One *round* is one ``Learner.update`` after a new batch arrived: the value pass over the whole replay, then
the critic's and the policy's minibatch steps. Three learners start from the same camera policy (two 84x84
cameras, the vision benchmark's BC architecture, random weights: the CNN's cost does not depend on them) and
see the same batches (random frames and proprioception: the cost does not depend on them either):

- ``frozen_cached``: ``camera_encoder="frozen"``, each frame embedded once
  (``gipo_robot.train.frozen_features``);
- ``frozen_frames``: the same learner reading the frames every round, as before the cache;
- ``finetune``: the camera encoders learning at ``policy_lr x 0.1``, which cannot be cached.

Scenarios: ``sim`` is the vision fine-tuning benchmark's setting (a replay of 4 batches of 2 envs x 1000
steps, 2 epochs, minibatches of 256); ``arm`` is ``finetune --robot``'s (a replay of ``--arm-episodes``
episodes of 200 steps, one new episode per round, 8 epochs). Before the timed rounds every learner runs one
round over the full replay (the cached learner embeds it then). Each timed round runs the three in a rotating
order; medians and ratios are reported. Writes ``benchmarks/frozen_features.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _common import provenance
from tqdm import tqdm

from gipo_robot.policies.gaussian import GaussianPolicy, PolicyConfig
from gipo_robot.train.critic_obs import build_critic
from gipo_robot.train.finetune import FinetuneConfig
from gipo_robot.train.learner import Learner
from gipo_robot.train.replay import ReplayBuffer, RolloutBatch

CAMERAS = ("agentview_image", "robot0_eye_in_hand_image")
PROPRIO = {"robot0_eef_pos": [3], "robot0_eef_quat": [4], "robot0_gripper_qpos": [2], "robot0_joint_pos": [7]}
ARMS = ("frozen_cached", "frozen_frames", "finetune")


def policy_config(size: int) -> PolicyConfig:
    """The vision benchmark's BC architecture (``bench_vision.py bc``)."""
    return PolicyConfig(
        low_dim=PROPRIO, images={c: [3, size, size] for c in CAMERAS}, action_dim=7, hidden=[256, 256],
        cnn_channels=[32, 64, 64], image_feature_dim=64, image_pool="spatial_softmax", image_keypoints=32,
    )  # fmt: skip


def make_batch(t: int, n: int, size: int, version: int, generator: torch.Generator) -> RolloutBatch:
    """``(T, N)`` steps of random frames and proprioception; each env's episode ends at the last step."""
    obs: dict[str, torch.Tensor] = {k: torch.randn(t, n, *s, generator=generator) for k, s in PROPRIO.items()}
    obs.update(
        {
            c: torch.randint(0, 256, (t, n, 3, size, size), generator=generator, dtype=torch.uint8)
            for c in CAMERAS
        }
    )
    truncated = torch.zeros(t, n, dtype=torch.bool)
    truncated[-1] = True
    return RolloutBatch(
        obs=obs,
        next_obs={k: torch.randn(t, n, *s, generator=generator) for k, s in PROPRIO.items()},
        actions=torch.randn(t, n, 1, 7, generator=generator).clamp(-1, 1),
        logp_behavior=torch.randn(t, n, 1, 7, generator=generator) - 1.0,
        exec_mask=torch.ones(t, n, 1, dtype=torch.bool),
        rewards=torch.rand(t, n, generator=generator),
        terminated=torch.zeros(t, n, dtype=torch.bool),
        truncated=truncated,
        version=version,
        final_images={
            c: torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)
            for c in CAMERAS
        },
    )


def learners(size: int, epochs: int) -> dict[str, Learner]:
    torch.manual_seed(0)
    policy = GaussianPolicy(policy_config(size))
    out = {}
    for arm in ARMS:
        encoder = "finetune" if arm == "finetune" else "frozen"
        config = FinetuneConfig(task="Lift", epochs=epochs, minibatch_size=256, policy_lr=3e-6,
                                camera_encoder=encoder, critic_warmup_iters=0)  # fmt: skip
        copy = GaussianPolicy(policy.config)
        copy.load_state_dict(policy.state_dict())
        copy.set_action_bounds(-torch.ones(7), torch.ones(7))
        out[arm] = Learner(copy, build_critic(config, copy, {}, where="the benchmark"), config)
    out["frozen_frames"].frozen_features = None
    return out


def run_scenario(name: str, args: argparse.Namespace) -> dict:
    """Timed rounds of the three learners on one scenario; median seconds per round and ratios."""
    if name == "sim":
        t, n, capacity, epochs, updates = 1000, 2, 4, 2, round(2 * 2000 / 256)
    else:
        t, n, capacity, epochs, updates = 200, 1, args.arm_episodes, 8, round(8 * 200 / 256)
    generator = torch.Generator().manual_seed(0)
    ours = learners(args.image_size, epochs)
    replays = {arm: ReplayBuffer(capacity) for arm in ARMS}
    for version in range(capacity):  # a full replay, then one round each (the cache fills here)
        batch = make_batch(t, n, args.image_size, version, generator)
        for replay in replays.values():
            replay.add(batch)
    for arm in ARMS:
        ours[arm].update(replays[arm], 0, torch.Generator().manual_seed(1), updates)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in tqdm(range(args.rounds), desc=name):
        batch = make_batch(t, n, args.image_size, capacity + r, generator)
        for k in range(len(ARMS)):
            arm = ARMS[(r + k) % len(ARMS)]
            replays[arm].add(batch)
            start = time.perf_counter()
            ours[arm].update(replays[arm], r + 1, torch.Generator().manual_seed(1), updates)
            times[arm].append(time.perf_counter() - start)
    median = {arm: statistics.median(v) for arm, v in times.items()}
    return {
        "scenario": name, "replay_samples": len(replays[ARMS[0]]), "new_samples": t * n, "updates": updates,
        "rounds": args.rounds, "round_s": times, "median_round_s": median,
        "frames_over_cached": median["frozen_frames"] / median["frozen_cached"],
        "finetune_over_cached": median["finetune"] / median["frozen_cached"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["sim", "arm"], choices=["sim", "arm"])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per learner")
    parser.add_argument("--arm-episodes", type=int, default=50, help="arm: episodes the replay holds")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/frozen_features.json"))
    args = parser.parse_args()
    rows = [run_scenario(name, args) for name in args.scenarios]
    for row in rows:
        m = row["median_round_s"]
        print(f"{row['scenario']}: {row['replay_samples']} samples in the replay, {row['new_samples']} new; "
              f"median round {m['frozen_cached']:.2f} s cached, {m['frozen_frames']:.2f} s frames "
              f"({row['frames_over_cached']:.1f}x), {m['finetune']:.2f} s fine-tuned encoder "
              f"({row['finetune_over_cached']:.1f}x)")  # fmt: skip
    args.out.write_text(json.dumps({"scenarios": rows, **provenance()}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
