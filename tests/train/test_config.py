"""FinetuneConfig as the single source of a run's settings: JSON round trip, early checks, budget rounding."""

import json

import pytest

from gipo_robot.configs import (
    ConfigError,
    config_from_dict,
    load_config,
    parse_assignments,
    parse_value,
    save_config,
)
from gipo_robot.train.config import FinetuneConfig


def test_a_saved_config_loads_back_equal(tmp_path):
    config = FinetuneConfig(
        objective="gipo", objective_params={"sigma": 0.5}, replay_size=8, init_log_std=None
    )
    save_config(config, tmp_path / "config.json")
    assert load_config(FinetuneConfig, tmp_path / "config.json") == config
    # Overrides replace what the file says, and nothing else.
    again = load_config(FinetuneConfig, tmp_path / "config.json", seed=3)
    assert again.seed == 3 and again.replay_size == 8 and again.objective_params == {"sigma": 0.5}


def test_a_key_the_file_leaves_out_takes_the_dataclass_default(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"objective": "ppo_clip", "env_steps": 4000}))
    config = load_config(FinetuneConfig, tmp_path / "old.json")
    assert config.env_steps == 4000 and config.replay_size == FinetuneConfig().replay_size


def test_config_file_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"replay_sise": 4}))
    with pytest.raises(ConfigError, match=r"bad\.json.*replay_sise.*known:.*replay_size"):
        load_config(FinetuneConfig, path)
    path.write_text(json.dumps({"replay_size": 0}))
    with pytest.raises(ConfigError, match=r"bad\.json.*replay_size must be >= 1"):
        load_config(FinetuneConfig, path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        load_config(FinetuneConfig, path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(FinetuneConfig, tmp_path / "missing.json")


def test_objective_parameters_are_checked_when_the_config_is_made():
    with pytest.raises(ValueError, match=r"ppo_clip.*sigma"):
        FinetuneConfig(objective="ppo_clip", objective_params={"sigma": 0.5})
    # Strings from the command line become the parameter's type.
    assert FinetuneConfig(objective="gipo", objective_params={"sigma": "0.25"}).objective_params == {
        "sigma": 0.25
    }


def test_the_bc_term_needs_its_demonstrations_in_the_config():
    with pytest.raises(ValueError, match="demo_store"):
        FinetuneConfig(bc_coef=0.1)
    assert FinetuneConfig(bc_coef=0.1, demo_store="demos.zarr").demo_store == "demos.zarr"


def test_the_budget_is_rounded_up_to_whole_iterations():
    # 2 envs x 1000 steps = 2000 env steps per iteration: 400 -> 1 iteration, 2001 -> 2.
    assert FinetuneConfig(env_steps=400).total_env_steps == 2000
    assert FinetuneConfig(env_steps=2001).iterations == 2
    assert FinetuneConfig(env_steps=2001).total_env_steps == 4000


def test_command_line_values_take_the_field_type():
    assert parse_assignments(["sigma=0.5", "eps = 0.2"], option="--objective-param") == {
        "sigma": "0.5",
        "eps": "0.2",
    }
    with pytest.raises(ConfigError, match="--objective-param expects NAME=VALUE"):
        parse_assignments(["sigma"], option="--objective-param")
    assert parse_value("none", float | None, where="x") is None
    assert parse_value("3", int, where="x") == 3
    assert parse_value("off", bool, where="x") is False
    with pytest.raises(ConfigError, match=r"init_log_std='abc': expected a float"):
        parse_value("abc", float | None, where="init_log_std")
    with pytest.raises(ConfigError, match=r"FinetuneConfig field\(s\) \['nope'\]"):
        config_from_dict(FinetuneConfig, {"nope": 1})
