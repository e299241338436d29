"""GIPO improves a scarce-data BC policy on Lift (the quickstart at reduced size; ~5 minutes, marked slow).

Run with ``.venv/bin/python -m pytest -m slow tests/train/test_learning.py``.
"""

import dataclasses

import pytest

from gipo_robot.train.quickstart import QuickstartConfig, run_quickstart


@pytest.mark.slow
def test_gipo_improves_the_bc_start_on_lift(tmp_path):
    base = QuickstartConfig()
    config = dataclasses.replace(
        base, eval_episodes=30, finetune=dataclasses.replace(base.finetune, env_steps=20_000, eval_every=5)
    )
    summary = run_quickstart(config, tmp_path, log=lambda message: None)
    bc, tuned = summary["bc"]["success_rate"], summary["finetuned"]["success_rate"]
    # Same 30 held-out seeds for both; the BC start is mediocre by construction (10 demos).
    assert 0.2 <= bc <= 0.8, bc
    assert tuned >= bc + 0.1, (bc, tuned)
