"""The staleness report's retention and paired tables: the numbers BENCHMARKS.md quotes for the floors."""

import subprocess
import sys

import pytest

from tests.scripts import SCRIPTS, load_scripts


def bench_staleness_cli(*args: str) -> subprocess.CompletedProcess:
    """``scripts/bench_staleness.py ARGS`` in a subprocess (its ``SystemExit`` errors are the behaviour)."""
    cmd = [sys.executable, str(SCRIPTS / "bench_staleness.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bench():
    with load_scripts("bench_staleness") as (module,):
        yield module


def _run(objective, k, seed, success, task="Lift", steps=30000):
    return {
        "task": task,
        "env_steps": steps,
        "objective": objective,
        "replay_size": k,
        "seed": seed,
        "final_success": success,
    }


def test_retention_keeps_largest_k_over_k1_and_flags_short_groups(bench):
    runs = [_run("gipo", 1, s, v) for s, v in enumerate([0.8, 1.0])]
    runs += [_run("gipo", 16, s, v) for s, v in enumerate([0.6, 0.8])]
    runs += [_run("gipo", 4, 0, 0.5)]  # one seed where the others have two
    runs += [_run("ppo_clip", 16, 0, 0.7)]  # no K = 1: no row
    lines = bench.retention_table(bench._groups(runs))
    assert lines[0].startswith("| task | budget | objective | K=1 | K=4 | K=16 |")
    assert lines[2:] == ["| Lift | 30k | gipo | 0.90 | 0.50 (n=1) | 0.70 | 78% (K=16) |"]


def test_paired_table_differences_seed_by_seed(bench):
    runs = [_run("gipo", 16, s, v) for s, v in enumerate([0.7, 0.2, 0.6])]
    runs += [_run("ppo_clip", 16, s, v) for s, v in enumerate([0.6, 0.4, 0.6])]
    runs += [_run("no_clip", 16, 5, 0.1)]  # no GIPO run on seed 5: nothing to pair
    lines = bench.paired_table(bench._groups(runs))
    # mean −0.03, s.e. = stdev(+0.10, −0.20, 0.00) / √3 = 0.153 / 1.73 = 0.09
    assert lines[2:] == [
        "| Lift | 30k | 16 | ppo_clip | 3 | -0.03 ± 0.09 (+0.10 / -0.20 / +0.00) | 1 / 1 / 1 |",
    ]


def test_gipo_variants_are_paired_with_the_baselines_only(bench):
    runs = [_run("gipo_s0.5", 16, s, v) for s, v in enumerate([0.5, 0.9])]
    runs += [_run("ppo_clip", 16, s, v) for s, v in enumerate([0.6, 0.6])]
    runs += [_run("gipo", 16, s, v) for s, v in enumerate([0.1, 0.1])]  # σ = 1 is paired_table's job
    runs += [_run("no_clip", 4, 0, 0.2)]  # another K: nothing to pair
    lines = bench.variants_table(bench._groups(runs))
    # (−0.10, +0.30): mean +0.10, s.e. = stdev / √2 = 0.283 / 1.41 = 0.20
    assert lines[2:] == [
        "| Lift | 30k | 16 | gipo_s0.5 | ppo_clip | 2 | +0.10 ± 0.20 (-0.10 / +0.30) | 1 / 0 / 1 |",
    ]
    assert bench.variants_table(bench._groups([_run("gipo", 16, 0, 0.5), _run("ppo_clip", 16, 0, 0.4)])) == []


def test_runs_at_another_learning_rate_are_reported_under_their_own_label(bench, tmp_path):
    """The learning-rate check's runs sit beside the grid's in one report, never pooled with them."""

    def run(objective, seed, success, lr):
        r = _run(objective, 16, seed, success, task="Can", steps=100000)
        curve = [[50000, success / 2], [100000, success]]
        r.update(
            config={"policy_lr": lr, "eval_episodes": 30},
            curve=curve,
            auc=success / 2,
            steps_to_80=None,
            final_episodes=50,
        )
        return r

    runs = [run("gipo", s, v, 1e-5) for s, v in enumerate([0.6, 0.2])]
    runs += [run("gipo", s, v, 3e-6) for s, v in enumerate([0.8, 0.6])]
    assert sorted(bench._groups(runs)) == [("Can", 100000, "gipo", 16), ("Can", 100000, "gipo@lr3e-06", 16)]
    text = bench.report(runs, tmp_path / "staleness_lr")
    assert "| Can | 100k | gipo | 16 | 2 | 0.40 ± 0.28 (50) |" in text
    assert "| Can | 100k | gipo@lr3e-06 | 16 | 2 | 0.70 ± 0.14 (50) |" in text
    assert "| Can | 100k | 16 | gipo@lr3e-06 | 2 | -0.30 ± 0.10 (-0.20 / -0.40) | 0 / 0 / 2 |" in text
    # and the other way
    assert "| Can | 100k | 16 | gipo | 2 | +0.30 ± 0.10 (+0.20 / +0.40) | 2 / 0 / 0 |" in text
    assert [p.name for p in tmp_path.iterdir()] == ["staleness_lr_Can_100k.png"]  # named after --out


def test_learning_rate_variants_get_their_own_panel_beside_their_grid_lr_objectives(bench):
    """The K = 16 panel holds the grid; the lr check's groups go to a second K = 16 panel with the grid-lr
    groups of the same objectives, so neither panel is a tangle of nine lines."""
    variants_at = {
        1: {"gipo", "ppo_clip"},
        16: {"gipo", "ppo_clip", "no_clip", "sapo", "gipo@lr3e-06", "ppo_clip@lr3e-05"},
    }
    assert bench.plot_panels(variants_at) == [
        (1, ["gipo", "ppo_clip"]),
        (16, ["gipo", "no_clip", "ppo_clip", "sapo"]),
        (16, ["gipo", "ppo_clip", "gipo@lr3e-06", "ppo_clip@lr3e-05"]),
    ]
    # a replay size run only at another learning rate gets just its lr panel
    assert bench.plot_panels({4: {"gipo@lr3e-06"}}) == [(4, ["gipo@lr3e-06"])]


def test_tables_are_empty_without_anything_to_compare(bench):
    groups = bench._groups([_run("gipo", 16, 0, 0.5)])
    assert bench.retention_table(groups) == []
    assert bench.paired_table(groups) == []


def test_every_variant_names_a_known_objective_with_parameters_it_accepts(bench):
    """A typo in a variant's parameters would only surface at a cell's first update, minutes into a run."""
    import torch

    from gipo_robot.objectives import get_objective

    logp = torch.tensor([-1.0, -0.5, -2.0], requires_grad=True)
    logp_behavior = torch.tensor([-1.2, -0.5, -1.0])
    advantages = torch.tensor([1.0, -0.5, 0.3])
    for name, (objective, params) in bench.VARIANTS.items():
        loss, _ = get_objective(objective)(logp, logp_behavior, advantages, **params)
        (grad,) = torch.autograd.grad(loss, logp)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_another_policy_lr_is_refused_in_the_default_grid_files(tmp_path):
    """Cells are not keyed by learning rate: another lr in the default files would be skipped or mixed in."""

    def bench_staleness(*args):
        return bench_staleness_cli("--policy-lr", "3e-6", "--list", *args)

    refused = bench_staleness()
    assert refused.returncode != 0
    assert "--policy-lr 3e-06" in refused.stderr and "--out" in refused.stderr
    out_only = bench_staleness("--out", str(tmp_path / "lr.json"))
    assert out_only.returncode != 0 and "--runs" in out_only.stderr  # default run dirs would be resumed
    grid = ["--tasks", "Can", "--objectives", "gipo", "--replay-sizes", "16", "--seeds", "0"]
    own_files = bench_staleness(*grid, "--out", str(tmp_path / "lr.json"), "--runs", str(tmp_path))
    assert own_files.returncode == 0, own_files.stderr
    assert own_files.stdout.split() == ["Can:gipo:16:0"]


def test_report_names_an_extra_result_file_it_cannot_read(tmp_path):
    bad = tmp_path / "lr.json"
    bad.write_text('{"cells": []}')
    result = bench_staleness_cli("--report", "--out", str(tmp_path / "g.json"), "--also", str(bad))
    assert result.returncode != 0
    assert str(bad) in result.stderr and "'runs'" in result.stderr
    assert not list(tmp_path.glob("*.png"))  # nothing reported from a half-read set of files


def test_append_run_keeps_earlier_runs_and_never_overwrites_a_broken_file(bench, tmp_path):
    out = tmp_path / "sub" / "staleness.json"
    bench.append_run(out, {"seed": 0})
    bench.append_run(out, {"seed": 1})
    assert bench.read_runs(out) == [{"seed": 0}, {"seed": 1}]
    out.write_text('{"runs": [')  # a truncated file: a finished cell must not replace what it held
    with pytest.raises(SystemExit, match=r"staleness\.json"):
        bench.append_run(out, {"seed": 2})
    assert out.read_text() == '{"runs": ['


def test_provenance_records_the_numeric_packages():
    """Runs repeat bit for bit only on one CPU and package set, so a result names both."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _common
    finally:
        sys.path.remove(str(SCRIPTS))
    from importlib import metadata

    machine = _common.provenance()["machine"]
    assert machine["mujoco"] == metadata.version("mujoco")
    assert machine["numpy"] == metadata.version("numpy")
    assert machine["cpu"] and machine["cores"] >= 1
    assert _common.package_version("no-such-package-gipo") is None
