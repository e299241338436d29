"""`gipo-robot finetune` reads its settings from FinetuneConfig: --config starts a saved run again, flags
typed on the command line override it, objective parameters are checked before any environment step."""

import json
import subprocess
import sys
import time
from pathlib import Path

from gipo_robot.configs import save_config
from gipo_robot.train.config import FinetuneConfig

EXE = str(Path(sys.executable).parent / "gipo-robot")

TINY = dict(
    task="Lift", num_envs=1, backend="sync", steps_per_env=10, env_steps=10, horizon=10, minibatch_size=8,
    epochs=1, eval_every=1, eval_episodes=1, critic_warmup_iters=0, replay_size=2, policy_lr=1e-4,
    objective="gipo", objective_params={"sigma": 0.5},
)  # fmt: skip


def finetune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "finetune", *args, "--json"], capture_output=True, text=True, timeout=300)


def test_a_saved_config_starts_the_same_run(tmp_path, lift_bc_policy):
    save_config(FinetuneConfig(**TINY), tmp_path / "run.json")
    done = finetune("--policy", str(lift_bc_policy), "--config", str(tmp_path / "run.json"),
                    "--out", str(tmp_path / "a"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved == json.loads((tmp_path / "run.json").read_text())
    # The run's own config.json starts it again, and a typed flag overrides only its own field.
    again = finetune("--policy", str(lift_bc_policy), "--config", str(tmp_path / "a" / "config.json"),
                     "--out", str(tmp_path / "b"), "--seed", "7", "--set", "epochs=2")  # fmt: skip
    assert again.returncode == 0, again.stderr
    resaved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert resaved == {**saved, "seed": 7, "epochs": 2}
    result = json.loads(again.stdout)
    assert result["objective_params"] == {"sigma": 0.5} and result["env_steps"] == 10
    # the best evaluated policy is a checkpoint of its own, named in the summary
    assert result["best_success"] == max(success for _, success in result["curve"])
    assert (Path(result["files"]["best"]) / "model.safetensors").exists()


def test_a_parameter_the_objective_lacks_fails_before_any_env_step(tmp_path, lift_bc_policy):
    t0 = time.perf_counter()
    done = finetune("--policy", str(lift_bc_policy), "--objective", "ppo_clip",
                    "--objective-param", "sigma=0.5", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert "ppo_clip" in error and "sigma" in error and "eps" in error, error
    assert not (tmp_path / "run").exists()  # nothing started: no run folder, no store
    assert time.perf_counter() - t0 < 30


def test_bad_overrides_name_the_field(tmp_path, lift_bc_policy):
    common = ("--policy", str(lift_bc_policy), "--out", str(tmp_path / "run"))
    done = finetune(*common, "--set", "epoch=2")
    assert done.returncode == 1 and "epoch" in json.loads(done.stdout)["error"]
    done = finetune(*common, "--objective-param", "sigma=wide")
    assert done.returncode == 1 and "sigma" in json.loads(done.stdout)["error"]
    (tmp_path / "bad.json").write_text(json.dumps({"replay_sise": 4}))
    done = finetune(*common, "--config", str(tmp_path / "bad.json"))
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 1 and "bad.json" in error and "replay_sise" in error
    assert not (tmp_path / "run").exists()
