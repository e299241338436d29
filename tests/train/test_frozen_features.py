"""A frozen camera encoder's embeddings: each frame goes through the CNN once, and the learner's rounds give
what they give on the frames (up to float rounding)."""

from __future__ import annotations

import pytest
import torch

from gipo_robot.policies import load_policy
from gipo_robot.policies.bc import BCData
from gipo_robot.sim import make_vector_env
from gipo_robot.train.collect import collect
from gipo_robot.train.critic_obs import build_critic
from gipo_robot.train.finetune import FinetuneConfig
from gipo_robot.train.learner import Learner
from gipo_robot.train.replay import ReplayBuffer
from tests.train.conftest import CAMERA

CONFIG = dict(
    task="Lift",
    num_envs=2,
    steps_per_env=10,
    minibatch_size=8,
    epochs=2,
    policy_lr=1e-3,
    seed=0,
    critic_warmup_iters=0,
)


@pytest.fixture(scope="module")
def batches(vision_policy):
    """Two iterations of real Lift frames (2 envs x 10 steps, episodes of 7: some end inside a batch)."""
    venv = make_vector_env("Lift", 2, backend="sync", horizon=7, cameras=("agentview",), image_size=32,
                           render_quality="fast")  # fmt: skip
    try:
        policy = load_policy(vision_policy)
        return [
            collect(policy, venv, 10, seed=v, version=v, generator=torch.Generator()).batch for v in (0, 1)
        ]
    finally:
        venv.close()


def learner(vision_policy, demos=None, **overrides) -> Learner:
    config = FinetuneConfig(**{**CONFIG, **overrides})
    policy = load_policy(vision_policy)
    return Learner(policy, build_critic(config, policy, {}, where="the test"), config, demos)


def demonstrations(batch) -> BCData:
    """A BC term's demonstrations made of a batch's steps (frames uint8, channels first, as loaded)."""
    m, h = len(batch), batch.actions.shape[2]
    return BCData(batch.flat("obs"), batch.flat("actions"), torch.ones(m, h, dtype=torch.bool),
                  torch.zeros(m, dtype=torch.long), (CAMERA,))  # fmt: skip


def rounds(learner: Learner, batches) -> list[dict]:
    """Two update rounds: the first batch alone, then both (the first one seen again)."""
    replay, generator, records = ReplayBuffer(4), torch.Generator().manual_seed(0), []
    for i, batch in enumerate(batches):
        replay.add(batch)
        records.append(learner.update(replay, i, generator))
    return records


def test_each_frame_is_embedded_once_and_the_rounds_match_the_frames(vision_policy, batches):
    demos = demonstrations(batches[1])
    cached, plain = (learner(vision_policy, demos, camera_encoder="frozen") for _ in range(2))
    cached.bc_coef = plain.bc_coef = 0.1  # the BC term as an arm turns it on for interventions
    assert cached.frozen_features is not None
    plain.frozen_features = None  # the same learner reading frames, as before the cache
    got, expected = rounds(cached, batches), rounds(plain, batches)
    # every frame once: each batch's observations, the frames after its ended or cut steps and the
    # demonstrations' frames; no more
    frames = sum(len(b) + len(b.final_images[CAMERA]) for b in batches) + len(demos)
    assert cached.frozen_features.embedded_frames == frames
    for a, b in zip(got, expected, strict=True):
        for key in ("value_loss", "loss", "approx_kl", "bc_nll", "log_std_mean"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    for net in ("policy", "critic"):
        ours, theirs = getattr(cached, net).state_dict(), getattr(plain, net).state_dict()
        assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours), net


def test_a_batch_that_left_the_replay_is_forgotten_and_one_that_stays_keeps_its_embedding(
    vision_policy, batches
):
    ours = learner(vision_policy, camera_encoder="frozen")
    features = ours.frozen_features
    replay = ReplayBuffer(1)
    replay.add(batches[0])
    first = features.view(replay).batches[0]
    assert first.obs[CAMERA].shape == (10, 2, 8)  # (T, N, D) in place of (T, N, C, h, w)
    assert first.rewards is batches[0].rewards  # the batch's own tensors: a relabel in place is seen
    assert features.view(replay).batches[0] is first
    replay.add(batches[1])  # capacity 1: the first batch leaves
    features.view(replay)
    assert [v[0] for v in features._views.values()] == [batches[1]]


def test_the_cache_serves_only_frozen_encoders_that_the_critic_shares(vision_policy):
    assert learner(vision_policy, camera_encoder="finetune").frozen_features is None
    config = FinetuneConfig(**CONFIG, camera_encoder="frozen")
    policy = load_policy(vision_policy)
    critic = build_critic(config, policy, {}, where="the test")
    with torch.no_grad():
        next(critic.encoder.cameras.parameters()).add_(0.1)  # e.g. a resume from a fine-tuned encoder
    assert Learner(policy, critic, config).frozen_features is None


def test_the_encoder_takes_embeddings_in_place_of_frames(vision_policy, batches):
    policy = load_policy(vision_policy)
    obs = {k: v[:3] for k, v in batches[0].flat("obs").items()}
    with torch.no_grad():
        embedded = {**obs, CAMERA: policy.encoder.cameras[CAMERA](obs[CAMERA])}
        assert torch.equal(policy.encoder(embedded), policy.encoder(obs))
