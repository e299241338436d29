"""The controlled-lag report (scripts/lag_report.py): the primary interaction row, seed pairing, the PNG and
the tuning table's mark, on synthetic runs whose numbers are derived by hand."""

import pytest

from tests.scripts import load_scripts


@pytest.fixture(scope="module")
def scripts():
    with load_scripts("lag_report", "bench_lag") as modules:  # lag_report imports bench_lag
        yield modules


def _run(arm, lag, seed, final, auc, lr=3e-5, task="Lift"):
    return {
        "task": task, "objective": arm, "ratio_level": "step", "lag": lag, "utd": 8, "seed": seed,
        "policy_lr": lr, "final_success": final, "final_episodes": 100, "auc": auc,
        "curve": [[0, 0.2], [5000, final / 2], [10000, final]], "dead_fraction": 0.01 * (1 + lag),
        "mean_trust_weight": 0.9 - 0.01 * lag if arm.startswith("gipo") else None,
        "approx_kl": 0.01 * (1 + lag) + 0.001 * seed, "ess": 0.8,
        "clip_frac": 0.1 if arm == "ppo_clip" else None, "mean_batch_lag": float(lag), "wall_s": 80.0,
        "cpu": "Test CPU", "commit": "abc", "machine": {},
    }  # fmt: skip


def _grid() -> list[dict]:
    """Seeds 0-2 of gipo and ppo_clip at L = 0 and 16, plus gipo L=16 seed 3 and ppo_clip L=0 seed 4, which
    have no partner in the other arm."""
    finals = {  # (arm, lag) -> final success of seeds 0, 1, 2
        ("gipo", 0): [0.5, 0.6, 0.7], ("ppo_clip", 0): [0.5, 0.5, 0.5],
        ("gipo", 16): [0.6, 0.7, 0.8], ("ppo_clip", 16): [0.2, 0.3, 0.4],
    }  # fmt: skip
    aucs = {("gipo", 16): [0.4, 0.2, 0.3]}  # every other cell 0.3
    runs = [
        _run(arm, lag, s, f, aucs.get((arm, lag), [0.3] * 3)[s])
        for (arm, lag), fs in finals.items()
        for s, f in enumerate(fs)
    ]
    return [*runs, _run("gipo", 16, 3, 0.0, 0.1), _run("ppo_clip", 0, 4, 0.9, 0.6)]


def _row(text: str, *starts: str) -> list[str]:
    """The cells of the one markdown row that begins with ``starts``."""
    rows = [line for line in text.splitlines() if line.startswith("| " + " | ".join(starts) + " |")]
    assert len(rows) == 1, (starts, rows)
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_interaction_row_is_the_hand_computed_value(scripts, tmp_path):
    lag_report, _ = scripts
    text = lag_report.report(_grid(), [], png_prefix=tmp_path / "lag")
    cells = _row(text, "Lift", "gipo vs ppo_clip", "L=16 vs L=0")
    # Seeds 0-2 (seed 3 lacks ppo_clip at L=16 and L=0, seed 4 gipo at L=0): final success per seed
    # (0.6-0.2, 0.7-0.3, 0.8-0.4) - (0.5-0.5, 0.6-0.5, 0.7-0.5) = (0.4, 0.3, 0.2), mean +0.30, all ahead;
    # every resampled mean lies in [0.2, 0.4], so the CI excludes 0.
    assert cells[3] == "3"
    assert cells[4].startswith("+0.30 [") and cells[4].endswith("edge grows with lag")
    lo, hi = (float(v) for v in cells[4].split("[")[1].split("]")[0].split(","))
    assert 0.2 - 1e-9 <= lo <= 0.3 <= hi <= 0.4 + 1e-9
    assert cells[5] == "3 / 0 / 0"
    # AUC per seed: (0.4-0.3, 0.2-0.3, 0.3-0.3) - (0, 0, 0) = (+0.1, -0.1, 0): mean 0, a tie.
    assert float(cells[6].split()[0]) == pytest.approx(0.0, abs=1e-9) and cells[6].endswith("tie")
    assert cells[7] == "1 / 1 / 1"


def test_paired_rows_drop_unpaired_seeds(scripts, tmp_path):
    lag_report, _ = scripts
    text = lag_report.report(_grid(), [], png_prefix=tmp_path / "lag")
    # L=16: gipo's seed 3 has no ppo_clip partner. Paired: (0.4, 0.4, 0.4), mean +0.40 (pooling seed 3 would
    # give 0.525 - 0.3 = +0.225); gipo beat ppo_clip on every pair, so P(gipo > ppo_clip) = 1.
    high = _row(text, "Lift", "16", "gipo − ppo_clip")
    assert high[3] == "3" and high[4].startswith("+0.40 [+0.40, +0.40] gipo ahead") and high[5] == "3 / 0 / 0"
    assert high[8].startswith("1.00 [")
    # L=0: ppo_clip's seed 4 (0.9) has no gipo partner. Paired: (0, 0.1, 0.2), mean +0.10 (with seed 4 the
    # means would tie at 0.60).
    low = _row(text, "Lift", "0", "gipo − ppo_clip")
    assert low[3] == "3" and low[4].startswith("+0.10 [") and low[5] == "2 / 1 / 0"
    # The per-cell table keeps every run: gipo at L=16 has 4 seeds.
    assert _row(text, "Lift", "gipo", "16")[3] == "4"


def test_png_per_task_is_written(scripts, tmp_path):
    lag_report, _ = scripts
    runs = _grid() + [{**r, "task": "Can"} for r in _grid()]
    text = lag_report.report(runs, [], png_prefix=tmp_path / "lag")
    for task in ("Lift", "Can"):
        png = tmp_path / f"lag_{task}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"`{png}`" in text


def test_an_arm_at_several_lrs_is_split_by_lr(scripts, tmp_path):
    lag_report, _ = scripts
    runs = _grid() + [_run("gipo", 0, s, 0.1, 0.1, lr=1e-4) for s in range(3)]
    assert sorted(set(lag_report.arm_labels(runs))) == ["gipo@lr0.0001", "gipo@lr3e-05", "ppo_clip@lr3e-05"]
    assert lag_report.arm_labels([{**r, "task": "Can"} for r in _grid()]) == [r["objective"] for r in _grid()]
    text = lag_report.report(runs, [], png_prefix=tmp_path / "lag")
    assert _row(text, "Lift", "gipo@lr0.0001", "0")[3] == "3"
    assert _row(text, "Lift", "gipo@lr3e-05", "0")[3] == "3"
    assert not [line for line in text.splitlines() if line.startswith("| Lift | gipo | ")]


def test_tuning_mark_matches_bench_lag_tuned_lr(scripts):
    lag_report, bench_lag = scripts
    seeds = (100, 101, 102)
    # gipo: 1e-5 averages 0.3, 3e-5 0.5: 3e-5. ppo_clip: 1e-5 and 3e-5 tie at 0.4 and 1e-5 wins on AUC (0.5 vs
    # 0.3); 1e-4's AUC of 0.9 does not count before final success (0.1).
    tune = [_run("gipo", 0, s, f, 0.3, lr=1e-5) for s, f in zip(seeds, (0.2, 0.3, 0.4), strict=True)]
    tune += [_run("gipo", 0, s, 0.5, 0.3, lr=3e-5) for s in seeds]
    tune += [_run("ppo_clip", 0, s, 0.4, 0.5, lr=1e-5) for s in seeds]
    tune += [_run("ppo_clip", 0, s, 0.4, 0.3, lr=3e-5) for s in seeds]
    tune += [_run("ppo_clip", 0, s, 0.1, 0.9, lr=1e-4) for s in seeds]
    text = lag_report.report([], tune)
    marked = {}
    for line in text.splitlines():
        if line.endswith("← tuned |"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert (cells[0], cells[1]) not in marked
            marked[cells[0], cells[1]] = float(cells[2])
    assert marked == {("Lift", arm): bench_lag.tuned_lr(tune, "Lift", arm) for arm in ("gipo", "ppo_clip")}
    assert marked == {("Lift", "gipo"): 3e-5, ("Lift", "ppo_clip"): 1e-5}
    assert "No grid runs yet." in text


def test_asynchronous_arms_pair_with_asynchronous_ppo_clip_and_with_their_lockstep_arm(scripts, tmp_path):
    lag_report, _ = scripts
    runs = _grid()
    runs += [
        {**_run("gipo_async", 0, s, f, 0.3), "mean_batch_lag": 1.0} for s, f in enumerate((0.4, 0.4, 0.6))
    ]
    runs += [{**_run("ppo_clip_async", 0, s, 0.5, 0.3), "mean_batch_lag": 1.0} for s in range(3)]
    text = lag_report.report(runs, [], png_prefix=tmp_path / "lag")
    # gipo_async against ppo_clip_async: (-0.1, -0.1, +0.1), mean -0.03; never against lockstep ppo_clip
    row = _row(text, "Lift", "0", "gipo_async − ppo_clip_async")
    assert row[3] == "3" and row[4].startswith("-0.03 [") and row[5] == "1 / 0 / 2"
    assert not [line for line in text.splitlines() if "gipo_async − ppo_clip |" in line]
    assert not [line for line in text.splitlines() if "gipo − ppo_clip_async" in line]
    # against the lockstep arm at L = 0 on the seeds both ran: gipo (0.5, 0.6, 0.7) -> (-0.1, -0.2, -0.1)
    row = _row(text, "Lift", "gipo_async − gipo")
    assert row[2] == "3" and row[3] == "1.00" and row[4].startswith("-0.13 [") and row[5] == "0 / 0 / 3"
    assert _row(text, "Lift", "ppo_clip_async − ppo_clip")[2] == "3"  # seed 4 has no asynchronous partner
    # the interaction table (lockstep lags) has no asynchronous row
    assert not [line for line in text.splitlines() if "_async vs" in line]
