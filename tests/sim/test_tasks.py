"""The task registry: robosuite's names are aliases of ours, unknown names list the known ones."""

from __future__ import annotations

import pytest

from gipo_robot.sim.tasks import TASK_ALIASES, TASKS, resolve_task


def test_robosuite_names_are_aliases_derived_from_the_registry():
    assert TASK_ALIASES == {"PickPlaceCan": "Can", "NutAssemblySquare": "Square"}
    assert [resolve_task(name) for name in ("Lift", "PickPlaceCan", "NutAssemblySquare")] == [
        "Lift",
        "Can",
        "Square",
    ]
    assert all(info.default_horizon > 0 for info in TASKS.values())


def test_unknown_task_lists_names_and_aliases():
    with pytest.raises(
        ValueError, match="unknown task 'Wipe'; known: Can, Lift, Square, Stack, NutAssemblySquare"
    ):
        resolve_task("Wipe")
