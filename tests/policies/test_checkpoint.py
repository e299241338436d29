"""Checkpoints: bit-exact round trip, no pickle, clear errors for tampered or mismatched files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gipo_robot.policies import (
    CheckpointError,
    Critic,
    GaussianPolicy,
    PolicyConfig,
    load_policy,
    save_policy,
)
from gipo_robot.policies.checkpoint import POLICY_TYPES, load_critic, policy_type

LOW_DIM = {"eef_pos": [3], "object": [10]}


@pytest.fixture
def policy() -> GaussianPolicy:
    torch.manual_seed(0)
    p = GaussianPolicy(PolicyConfig(low_dim=LOW_DIM, action_dim=7, chunk=2, hidden=[16]))
    p.set_action_bounds(-torch.arange(1, 8).float(), torch.arange(1, 8).float())
    with torch.no_grad():
        p.encoder.obs_mean.normal_()
        p.raw_log_std.normal_()
    return p


def test_round_trip_is_bit_exact(tmp_path, policy):
    critic = Critic(policy.config)
    save_policy(tmp_path / "ckpt", policy, critic=critic, provenance={"trained_on": "demos.zarr"})
    loaded = load_policy(tmp_path / "ckpt")
    for (k, v), (k2, v2) in zip(policy.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    assert loaded.config == policy.config
    loaded_critic = load_critic(tmp_path / "ckpt")
    for a, b in zip(critic.state_dict().values(), loaded_critic.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["provenance"] == {"trained_on": "demos.zarr"}


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    assert load_critic(tmp_path / "ckpt") is None


def test_tampered_weights_fail_clearly(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    weights = tmp_path / "ckpt" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside a tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="modified or truncated"):
        load_policy(tmp_path / "ckpt")


def test_truncated_weights_fail_clearly(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_policy(tmp_path / "ckpt")


def test_missing_or_foreign_checkpoints_fail_clearly(tmp_path, policy):
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        load_policy(tmp_path / "nowhere")
    save_policy(tmp_path / "ckpt", policy)
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_policy(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a gipo-robot policy checkpoint"):
        load_policy(tmp_path / "ckpt")


def test_weights_for_another_architecture_fail_clearly(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    config_file = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_file.read_text())
    config["policy"]["hidden"] = [32]  # the weights are for [16]
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_policy(tmp_path / "ckpt")


def test_wrong_spec_names_the_feature(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    with pytest.raises(CheckpointError, match="'object' has shape \\[9\\]"):
        load_policy(tmp_path / "ckpt", low_dim={"eef_pos": [3], "object": [9]})
    with pytest.raises(CheckpointError, match="'eef_pos' is not provided"):
        load_policy(tmp_path / "ckpt", low_dim={"object": [10]})
    with pytest.raises(CheckpointError, match="action dimension is 6"):
        load_policy(tmp_path / "ckpt", action_dim=6)
    # Extra features the policy does not read are fine.
    load_policy(tmp_path / "ckpt", low_dim={"eef_pos": [3], "object": [10], "joint_pos": [7]}, action_dim=7)


def test_checkpoint_records_its_policy_type_and_loads_through_the_registry(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["policy_type"] == "gaussian" and policy_type(config) == "gaussian"
    assert all(isinstance(v, str) and ":" in v for v in POLICY_TYPES.values())  # lazy "module:function"
    assert {"gaussian", "lerobot"} <= set(POLICY_TYPES)
    # A checkpoint written before policy_type was recorded is a Gaussian one (the weights' sha256 is over
    # model.safetensors only, so editing config.json keeps it valid).
    del config["policy_type"]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    assert torch.equal(load_policy(tmp_path / "ckpt").raw_log_std, policy.raw_log_std)


def test_unknown_policy_type_lists_the_known_ones(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy)
    config_file = tmp_path / "ckpt" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "policy_type": "diffusion"}))
    known = ", ".join(sorted(POLICY_TYPES))
    with pytest.raises(
        CheckpointError, match=rf"config\.json: unknown policy_type 'diffusion'; known: {known}$"
    ):
        load_policy(tmp_path / "ckpt")


def test_loading_a_gaussian_checkpoint_imports_no_adapter(tmp_path, policy):
    save_policy(tmp_path / "ckpt", policy, critic=Critic(policy.config))
    code = (
        "import sys; from gipo_robot.policies.checkpoint import load_critic, load_policy; "
        f"load_policy({str(tmp_path / 'ckpt')!r}); load_critic({str(tmp_path / 'ckpt')!r}); "
        "assert 'gipo_robot.policies.from_lerobot' not in sys.modules, 'from_lerobot was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
