"""An ACT saved (or trained) by LeRobot 0.6, loaded as a Gaussian policy: its mean is what LeRobot's own
``predict_action`` returns, its log-prob is exact, gradients reach ACT and the log-std, GIPO updates move it,
and checkpoints round-trip bit for bit."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from tests.lerobot.conftest import ACTION_DIM, CHUNK, ENV_LAYOUT, SKIP_REASON, STATE_LAYOUT, write_tiny_act

pytest.importorskip("lerobot", minversion="0.6", reason=SKIP_REASON)

import torch
from lerobot.common.control_utils import predict_action
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

from gipo_robot.objectives import at_level, gipo
from gipo_robot.policies.checkpoint import CheckpointError, load_critic, load_policy, save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.from_lerobot import export_lerobot, load_finetuned, load_lerobot_policy
from gipo_robot.policies.head import GaussianHead
from tests.lerobot.made_by_lerobot import ARM_INPUTS

INPUTS = {"observation.state": STATE_LAYOUT, "observation.environment_state": ENV_LAYOUT}
B = 8


def observations(seed: int = 0, image: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = {
        name: torch.randn(B, *shape, generator=g) for name, shape in {**STATE_LAYOUT, **ENV_LAYOUT}.items()
    }
    if image:
        obs["front"] = torch.randint(0, 256, (B, 3, 32, 32), generator=g, dtype=torch.uint8)
    return obs


def lerobot_reference(path, obs: dict[str, torch.Tensor], image: bool = False) -> torch.Tensor:
    """ACT's chunk in environment units the way LeRobot runs it: pre-processor -> predict_action_chunk ->
    post-processor, all loaded from the checkpoint folder by LeRobot."""
    act = ACTPolicy.from_pretrained(path)
    pre, post = make_pre_post_processors(act.config, pretrained_path=str(path))
    batch = {
        "observation.state": torch.cat([obs["eef"], obs["gripper"]], dim=-1),
        "observation.environment_state": obs["object"],
    }
    if image:
        batch["observation.images.front"] = obs["front"].float() / 255.0
    return post(act.predict_action_chunk(pre(batch)))


def test_mean_is_acts_own_chunk_and_log_prob_is_exact(tiny_act):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    assert (policy.config.chunk, policy.config.action_dim) == (CHUNK, ACTION_DIM)
    assert policy.config.low_dim == {"eef": [3], "gripper": [2], "object": [4]}
    obs = observations()
    mean = policy.env_mean(policy.normalized_chunk(obs))
    reference = lerobot_reference(tiny_act, obs)
    assert mean.shape == (B, CHUNK, ACTION_DIM)
    torch.testing.assert_close(mean, reference, rtol=0, atol=0)  # the same LeRobot ops, bit for bit
    torch.testing.assert_close(policy.mode(obs), reference.clamp(-1, 1), rtol=0, atol=0)

    # σ = exp(log_std_init) · action std: log_std_init -1 and the checkpoint's action std (0.5, 2.0, 0.05)
    # (MEAN_STD un-normalisation a = z·std + mean has slope std).
    sigma = math.exp(-1.0) * torch.tensor([0.5, 2.0, 0.05])
    torch.testing.assert_close(policy.action_scale, torch.tensor([0.5, 2.0, 0.05]))
    actions, logp = policy.sample(obs, torch.Generator().manual_seed(1))
    normal = torch.distributions.Normal(reference, sigma)
    expected = normal.log_prob(actions).sum(dim=(1, 2))  # sum over the H=6 steps and A=3 dims
    torch.testing.assert_close(policy.log_prob(obs, actions), expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(logp, expected, rtol=1e-5, atol=1e-4)
    # entropy of a diagonal Gaussian: Σ (½ + ½ log 2π + log σ) over the chunk
    torch.testing.assert_close(policy.entropy(obs), normal.entropy().sum(dim=(1, 2)), rtol=1e-5, atol=1e-4)
    # clip: what the robot gets, the density ignores it (same convention as GaussianPolicy)
    assert policy.clip(torch.full((1, CHUNK, ACTION_DIM), 3.0)).max() == 1.0


def test_trained_act_acts_as_lerobots_own_predict_action(trained_act):
    """An ACT trained by LeRobot (processors saved next to the model): the wrapped policy's chunk is, step by
    step, what LeRobot's deploy path returns: ``predict_action`` (observation -> pre-processor ->
    ``select_action`` from its queue of ``n_action_steps`` -> post-processor), bit for bit."""
    checkpoint, _ = trained_act
    policy = load_lerobot_policy(checkpoint, inputs=ARM_INPUTS)
    assert (policy.config.chunk, policy.config.action_dim) == (4, 6)  # chunk = ACT's n_action_steps
    # the checkpoint's own pipelines, as LeRobot wrote them (steps, settings, state file names)
    for name in ("preprocessor", "postprocessor"):
        saved = json.loads((checkpoint / f"policy_{name}.json").read_text())
        assert policy.config.processors[name] == saved
    act = ACTPolicy.from_pretrained(checkpoint)
    pre, post = make_pre_post_processors(act.config, pretrained_path=str(checkpoint))
    g = torch.Generator().manual_seed(7)
    obs = {"joint_pos": 0.4 * torch.randn(3, 6, generator=g), "joint_vel": torch.randn(3, 6, generator=g)}
    for b in range(3):
        one = {k: v[b : b + 1] for k, v in obs.items()}  # batches of 1 as LeRobot acts (BLAS rounds by shape)
        with torch.no_grad():
            chunk = policy.env_mean(policy.normalized_chunk(one))[0]  # (H=4, A=6)
        act.reset()  # a new episode: an empty action queue
        observation = {
            "observation.state": obs["joint_pos"][b].numpy(),
            "observation.environment_state": obs["joint_vel"][b].numpy(),
        }
        theirs = [
            predict_action(
                dict(observation), act, torch.device("cpu"), pre, post, use_amp=False, task="reach"
            )
            for _ in range(act.config.n_action_steps)
        ]
        torch.testing.assert_close(chunk, torch.cat(theirs), rtol=0, atol=0)
    # the action scale is the post-processor's slope: the dataset's action std (MEAN_STD)
    stats = json.loads((trained_act[1] / "meta" / "stats.json").read_text())
    torch.testing.assert_close(policy.action_scale, torch.tensor(stats["action"]["std"], dtype=torch.float32))


def test_a_post_processor_that_is_not_affine_is_refused(tiny_act, tmp_path):
    """The Gaussian's σ is log_std times the post-processor's slope, so that slope must be one positive number
    per action dimension; a post-processor that decreases (here: a negative action std in its statistics)
    is refused at load time."""
    broken = tmp_path / "act"
    shutil.copytree(tiny_act, broken)
    config = json.loads((broken / "policy_postprocessor.json").read_text())
    state_file = broken / config["steps"][0]["state_file"]
    from safetensors.torch import load_file, save_file

    state = load_file(str(state_file))
    state["action.std"] = -state["action.std"]  # a decreasing map: a = -z * std + mean
    save_file(state, str(state_file))
    with pytest.raises(CheckpointError, match=r"post-processor is not increasing and affine"):
        load_lerobot_policy(broken, inputs=INPUTS)


def test_gradients_reach_act_and_the_log_std(tiny_act):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    obs = observations()
    actions, _ = policy.sample(obs)
    (-policy.log_prob(obs, actions).mean()).backward()
    assert policy.raw_log_std.grad is not None and policy.raw_log_std.grad.abs().sum() > 0
    act_grads = {n: p.grad for n, p in policy.lerobot.named_parameters() if p.grad is not None}
    # the decoder's output head maps straight to the chunk: it must get a gradient
    assert act_grads["model.action_head.weight"].abs().sum() > 0
    assert sum(g.abs().sum() for g in act_grads.values()) > 0
    assert not policy.lerobot.training  # ACT stays in eval mode (dropout off) even after .train()
    policy.train()
    assert not policy.lerobot.training and policy.training


def gipo_updates(policy, obs, steps: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Adam steps of GIPO on one batch of the policy's own samples with advantage +1 for the
    first half and -1 for the second; returns their log-probs before and after."""
    actions, _ = policy.sample(obs, torch.Generator().manual_seed(3))
    with torch.no_grad():
        logp_behavior = policy.log_prob_per_dim(obs, actions)
    advantages = torch.tensor([1.0] * (B // 2) + [-1.0] * (B // 2))
    optim = torch.optim.Adam(policy.parameters(), lr=1e-5)  # finetune's default policy_lr: 3e-5
    for _ in range(steps):
        logp = policy.log_prob_per_dim(obs, actions)
        loss, _ = gipo(*at_level(logp, logp_behavior, advantages, None, "chunk"), sigma=1.0)
        optim.zero_grad()
        loss.backward()
        optim.step()
    with torch.no_grad():
        return logp_behavior.sum(dim=(1, 2)), policy.log_prob(obs, actions)


def test_gipo_updates_change_the_policy_the_right_way(tiny_act):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    before_weights = {k: v.clone() for k, v in policy.state_dict().items()}
    before, after = gipo_updates(policy, observations())
    changed = [k for k, v in policy.state_dict().items() if not torch.equal(v, before_weights[k])]
    assert "raw_log_std" in changed and any(k.startswith("lerobot.model.") for k in changed)
    # GIPO at ratio ~1 is the on-policy gradient g = mean_j A_j ∇log π_j: small steps raise the log-prob
    # of the +1-advantage samples and lower that of the -1 ones (measured: +0.42 and -0.66 nats).
    delta = after - before
    assert delta[: B // 2].mean() > 0 > delta[B // 2 :].mean()
    # normalisation statistics are data, not parameters: untouched
    assert all(
        torch.equal(policy.state_dict()[k], before_weights[k]) for k in before_weights if "norm_stats" in k
    )


def test_finetuned_checkpoint_round_trip_is_bit_exact(tiny_act, tmp_path):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS, chunk=4, log_std_init=-2.0)
    gipo_updates(policy, observations(), steps=2)
    critic = Critic(policy.config)
    critic.encoder.load_state_dict(policy.encoder.state_dict())  # what the fine-tuning loop does
    save_policy(tmp_path / "ft", policy, critic=critic, provenance={"test": True})
    assert not list((tmp_path / "ft").glob("*.pt")) and not list((tmp_path / "ft").glob("*.pkl"))
    loaded = load_finetuned(tmp_path / "ft")
    assert loaded.config == policy.config and loaded.config.chunk == 4
    mine, theirs = policy.state_dict(), loaded.state_dict()
    assert sorted(mine) == sorted(theirs)
    for k in mine:
        assert torch.equal(mine[k], theirs[k]), k
    obs = observations(5)
    actions, _ = policy.sample(obs)
    assert torch.equal(policy.log_prob(obs, actions), loaded.log_prob(obs, actions))
    assert torch.equal(policy.mode(obs), loaded.mode(obs))

    # the fine-tuned ACT goes back to LeRobot as a LeRobot checkpoint that reproduces the same chunk
    export_lerobot(loaded, tmp_path / "export")
    reference = lerobot_reference(tmp_path / "export", obs)[:, :4]
    torch.testing.assert_close(loaded.env_mean(loaded.normalized_chunk(obs)), reference, rtol=0, atol=0)


def test_critic_encoder_gets_the_state_normalisation(tiny_act):
    stats = json.loads((tiny_act / "policy_preprocessor.json").read_text())  # the file exists: LeRobot's
    assert stats["steps"][-1]["registry_name"] == "normalizer_processor"
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    enc = policy.encoder
    # ObsEncoder orders features by name (eef, gripper, object): observation.state's mean/std split 3 + 2,
    # then environment_state's (zeros/ones in the test checkpoint).
    state_mean = policy._stats()["observation.state"]["mean"]
    torch.testing.assert_close(enc.obs_mean, torch.cat([state_mean, torch.zeros(4)]))


def test_wrong_spec_and_bad_checkpoints_fail_clearly(tiny_act, tmp_path):
    with pytest.raises(CheckpointError, match=r"'observation\.state' has 5 values but inputs gives"):
        load_lerobot_policy(tiny_act, inputs={**INPUTS, "observation.state": {"eef": [3]}})
    with pytest.raises(CheckpointError, match=r"reads 'observation\.environment_state' but inputs"):
        load_lerobot_policy(tiny_act, inputs={"observation.state": STATE_LAYOUT})
    with pytest.raises(CheckpointError, match=r"chunk 7 is outside 1\.\.6"):
        load_lerobot_policy(tiny_act, inputs=INPUTS, chunk=7)
    ensembled = tmp_path / "ensembled"  # one action per step averaged over overlapping chunks
    shutil.copytree(tiny_act, ensembled)
    config = json.loads((ensembled / "config.json").read_text())
    (ensembled / "config.json").write_text(
        json.dumps({**config, "temporal_ensemble_coeff": 0.01, "n_action_steps": 1})
    )
    with pytest.raises(CheckpointError, match=r"temporal_ensemble_coeff is set.*null in config.json"):
        load_lerobot_policy(ensembled, inputs=INPUTS)
    old_format = tmp_path / "old"  # LeRobot < 0.4 kept normalisation in the model, no processor files
    shutil.copytree(tiny_act, old_format)
    (old_format / "policy_preprocessor.json").unlink()
    with pytest.raises(CheckpointError, match=r"policy_preprocessor\.json is missing.*migrate_policy_norm"):
        load_lerobot_policy(old_format, inputs=INPUTS)

    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    save_policy(tmp_path / "ft", policy)
    with pytest.raises(CheckpointError, match="action dimension is 7, the policy outputs 3"):
        load_finetuned(tmp_path / "ft", action_dim=7)
    with pytest.raises(
        CheckpointError, match=r"low-dim feature 'eef' has shape \[4\], the policy expects \[3\]"
    ):
        load_finetuned(tmp_path / "ft", low_dim={"eef": [4], "gripper": [2], "object": [4]})
    weights = tmp_path / "ft" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_finetuned(tmp_path / "ft")
    # a checkpoint fine-tuned under LeRobot 0.4 (normalisation statistics only, no processor pipelines)
    save_policy(tmp_path / "old", policy)
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    section = config["policy"]
    section["stats"] = section.pop("processor_state")
    del section["processors"]
    section["lerobot_version"] = "0.4.4"
    config_file.write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"saved with LeRobot 0\.4\.4 by an older gipo-robot.*export_lerobot"
    ):
        load_finetuned(tmp_path / "old")


def test_camera_input(tmp_path):
    """ACT with a 32x32 camera (ResNet-18 backbone, random weights, nothing downloaded)."""
    write_tiny_act(tmp_path / "act", image=(3, 32, 32))
    inputs = {**INPUTS, "observation.images.front": {"front": [3, 32, 32]}}
    policy = load_lerobot_policy(tmp_path / "act", inputs=inputs)
    assert policy.config.images == {"front": [3, 32, 32]}
    obs = observations(image=True)
    reference = lerobot_reference(tmp_path / "act", obs, image=True)
    torch.testing.assert_close(policy.env_mean(policy.normalized_chunk(obs)), reference, rtol=0, atol=0)
    critic = Critic(policy.config)
    assert critic(obs).shape == (B,)


def test_shares_the_gaussian_head_and_sets_its_log_std(tiny_act):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    assert isinstance(policy, GaussianHead) and policy.policy_type == "lerobot"
    policy.set_log_std(-2.0)
    # entropy per chunk step: Σ_a (½ + ½ log 2π + log_std + log scale_a) with action std (0.5, 2.0, 0.05):
    # 3·(0.5 + 0.9189385 - 2) + ln(0.5·2·0.05) = -1.7431845 - 2.9957323 = -4.7389168; H = 6 steps: -28.433501
    torch.testing.assert_close(
        policy.entropy(observations()), torch.full((B,), -28.433501), rtol=1e-6, atol=0
    )
    policy.floor_log_std(-1.5)  # every log-std -2 < -1.5 is raised: the entropy grows by 0.5 · 18 = 9
    torch.testing.assert_close(
        policy.entropy(observations()), torch.full((B,), -19.433501), rtol=1e-6, atol=0
    )
    with pytest.raises(ValueError, match=r"log_std_min=-5\.0 and log_std_max=1\.0"):
        policy.set_log_std(1.0)


def test_load_policy_and_load_critic_dispatch_through_the_registry(tiny_act, tmp_path):
    policy = load_lerobot_policy(tiny_act, inputs=INPUTS)
    critic = Critic(policy.config)
    save_policy(tmp_path / "ft", policy, critic=critic)
    config_file = tmp_path / "ft" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["policy_type"] == "lerobot"
    loaded = load_policy(tmp_path / "ft", action_dim=ACTION_DIM)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    loaded_critic = load_critic(tmp_path / "ft")
    assert all(torch.equal(v, loaded_critic.state_dict()[k]) for k, v in critic.state_dict().items())
    # a checkpoint written before policy_type was recorded is recognised by its lerobot_type
    del config["policy_type"]
    config_file.write_text(json.dumps(config))
    assert type(load_policy(tmp_path / "ft")) is type(policy)
