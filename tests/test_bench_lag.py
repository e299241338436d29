"""The controlled-lag grid's bookkeeping (scripts/bench_lag.py): which cells it runs, in which order, what it
refuses, and the BC starts it ships. No fine-tuning runs here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import SCRIPTS, load_scripts


def bench_lag_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``scripts/bench_lag.py ARGS`` run in ``cwd`` (its result files are relative to the working folder)."""
    cmd = [sys.executable, str(SCRIPTS / "bench_lag.py"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bench_lag():
    with load_scripts("bench_lag") as (module,):
        yield module


def test_a_grid_before_any_tuning_is_refused_naming_the_file(tmp_path):
    result = bench_lag_cli(tmp_path, "grid", "--list")
    assert result.returncode != 0
    assert "benchmarks/lag_tune.json" in result.stderr and "bench_lag.py tune" in result.stderr


def test_the_grid_runs_seed_by_seed_and_skips_finished_cells(tmp_path):
    # Seed-major order: a grid stopped half-way leaves whole seeds (every arm and lag), which pair.
    (tmp_path / "benchmarks").mkdir()
    done = {"task": "Lift", "objective": "gipo", "lag": 0, "seed": 0, "policy_lr": 1e-5}
    (tmp_path / "benchmarks" / "lag.json").write_text(json.dumps({"runs": [done]}))
    result = bench_lag_cli(
        tmp_path, "grid", "--lr", "1e-5", "--lags", "0", "16", "--seeds", "0", "1", "--list"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "Lift:ppo_clip:0:0:1e-05", "Lift:gipo:16:0:1e-05", "Lift:ppo_clip:16:0:1e-05",
        "Lift:gipo:0:1:1e-05", "Lift:ppo_clip:0:1:1e-05", "Lift:gipo:16:1:1e-05", "Lift:ppo_clip:16:1:1e-05",
    ]  # fmt: skip
    # the same cell at another learning rate is another cell
    result = bench_lag_cli(
        tmp_path, "grid", "--lr", "3e-6", "--arms", "gipo", "--lags", "0", "--seeds", "0", "--list"
    )
    assert result.stdout.split() == ["Lift:gipo:0:0:3e-06"]


def test_a_regime_keeps_its_own_tuning_and_cells(tmp_path):
    # the reuse grid's cells and tuning do not count for another regime: its own files, its own refusal
    (tmp_path / "benchmarks").mkdir()
    done = {"task": "Lift", "objective": "gipo", "lag": 0, "seed": 0, "policy_lr": 1e-5}
    (tmp_path / "benchmarks" / "lag.json").write_text(json.dumps({"runs": [done]}))
    result = bench_lag_cli(tmp_path, "grid", "--regime", "episodes10", "--list")
    assert result.returncode != 0 and "benchmarks/lag_tune_episodes10.json" in result.stderr
    args = ("grid", "--regime", "episodes10", "--lr", "1e-5", "--arms", "gipo", "--lags", "0", "--seeds", "0")
    assert bench_lag_cli(tmp_path, *args, "--list").stdout.split() == ["Lift:gipo:0:0:1e-05"]
    (tmp_path / "benchmarks" / "lag_episodes10.json").write_text(json.dumps({"runs": [done]}))
    assert bench_lag_cli(tmp_path, *args, "--list").stdout.split() == []


def test_can_is_a_task_of_the_quickstart_scale_regime_only(tmp_path):
    args = ("grid", "--tasks", "Can", "--lr", "1e-5", "--arms", "gipo", "--lags", "0", "--seeds", "0")
    args = (*args, "--list")
    result = bench_lag_cli(tmp_path, *args)
    assert result.returncode != 0 and "regime 'reuse' has no settings for ['Can']" in result.stderr
    result = bench_lag_cli(tmp_path, "--regime", "episodes10", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Can:gipo:0:0:1e-05"]


def test_the_grid_takes_each_arms_tuned_learning_rate(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    finals = [("gipo", 3e-6, 0.7), ("gipo", 1e-5, 0.5), ("ppo_clip", 3e-6, 0.6), ("ppo_clip", 1e-5, 0.8)]
    tune = [
        {
            "task": "Lift",
            "objective": arm,
            "lag": 0,
            "seed": s,
            "policy_lr": lr,
            "final_success": f,
            "auc": 0.5,
        }
        for arm, lr, f in finals
        for s in (100, 101)
    ]
    (tmp_path / "benchmarks" / "lag_tune.json").write_text(json.dumps({"runs": tune}))
    result = bench_lag_cli(tmp_path, "grid", "--lags", "0", "--seeds", "0", "--list")
    assert result.stdout.split() == ["Lift:gipo:0:0:3e-06", "Lift:ppo_clip:0:0:1e-05"]


def test_a_bc_start_is_shipped_as_weights_and_config_only_once(bench_lag, tmp_path, monkeypatch):
    trained = tmp_path / "runs" / "bc_Lift_10_3"
    trained.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "metrics.csv", "loss_curve.png"):
        (trained / name).write_text(name)
    calls = []

    def fake_bc_start(task, seed, demos, root):
        calls.append((task, seed, demos))
        return trained

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_lag, "bc_start", fake_bc_start)
    shipped = bench_lag.start("Lift", 3)
    assert shipped == Path("benchmarks/lag_starts/bc_Lift_10_3")
    assert sorted(p.name for p in shipped.iterdir()) == ["config.json", "model.safetensors"]
    assert bench_lag.start("Lift", 3) == shipped and calls == [("Lift", 3, 10)]  # trained once, then shipped


def test_an_asynchronous_arm_runs_at_its_natural_lag_with_its_objectives_tuned_lr(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    tune = [
        {
            "task": "Lift",
            "objective": arm,
            "lag": 0,
            "seed": 100,
            "policy_lr": lr,
            "final_success": f,
            "auc": 0.5,
        }
        for arm, lr, f in (("gipo", 3e-6, 0.7), ("gipo", 1e-5, 0.5), ("ppo_clip", 1e-5, 0.8))
    ]
    (tmp_path / "benchmarks" / "lag_tune.json").write_text(json.dumps({"runs": tune}))
    args = ("grid", "--arms", "gipo_async", "ppo_clip_async", "--seeds", "0", "--list")
    result = bench_lag_cli(tmp_path, *args, "--lags", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Lift:gipo_async:0:0:3e-06", "Lift:ppo_clip_async:0:0:1e-05"]
    result = bench_lag_cli(tmp_path, *args, "--lags", "0", "8")
    assert (
        result.returncode != 0 and "natural lag" in result.stderr and "gipo_async at L = 8" in result.stderr
    )
    result = bench_lag_cli(tmp_path, "grid", "--only", "Lift:ppo_clip_async:4:0", "--list")
    assert result.returncode != 0 and "ppo_clip_async at L = 4" in result.stderr


def test_an_asynchronous_cell_collects_on_two_ray_workers_with_the_lockstep_batch_size(
    bench_lag, monkeypatch
):
    seen = {}

    def fake_finetune(config, base, run_dir, resume):
        seen.update(config=config, run_dir=run_dir)
        raise SystemExit("stop before training")

    monkeypatch.setattr(bench_lag, "start", lambda task, seed: Path("start"))
    monkeypatch.setattr(bench_lag, "finetune", fake_finetune)
    for arm in ("gipo_async", "gipo"):
        with pytest.raises(SystemExit):
            bench_lag.run_cell("Lift", arm, 0, 3, 1e-5, 100, "episodes10")
        c = seen["config"]
        batch = c.num_envs // c.workers * c.steps_per_env  # one worker's batch is one iteration's
        assert batch == 2 * bench_lag.REGIMES["episodes10"]["Lift"]["steps_per_env"]
        assert c.async_collection == (arm == "gipo_async") and c.policy_lag == 0
        assert (c.backend, c.workers) == (("ray", 2) if arm == "gipo_async" else ("subprocess", 1))
