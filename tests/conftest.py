"""Fixtures shared across the test folders."""

import importlib.abc
import importlib.util
import os
import sys

import pytest


@pytest.fixture
def terminal():
    """A pseudo-terminal ``(master, slave)``: tests type into ``master``, code under test reads ``slave``."""
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


# Without the simulator (an environment where gipo-robot was installed without the [sim] extra, such as the
# LeRobot venv that `make test-lerobot` runs the core tests in), a test that failed because it reached for the
# simulator is reported as skipped, with that reason; with it (the main venv), nothing changes. "Reached for":
# it tried to import robosuite (the finder below notes each try), or a CLI run it made printed the [sim] hint.
HAS_SIM = importlib.util.find_spec("robosuite") is not None
collect_ignore = [] if HAS_SIM else ["sim"]
SIM_HINT = "the [sim] extra installs"  # in what a CLI run prints when it needs the simulator


class _SimImportTries(importlib.abc.MetaPathFinder):
    """Notes every attempt to import the simulator's packages; finds nothing (the import then fails)."""

    tried = False

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"robosuite", "mink", "numba"}:
            _SimImportTries.tried = True
        return None


if not HAS_SIM:
    sys.meta_path.insert(0, _SimImportTries())


def pytest_configure(config):
    config.addinivalue_line("markers", "sim: runs the simulator in a subprocess (skipped without [sim])")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``sim`` (a CLI run of the simulator whose output the test hides) skip without it."""
    if not HAS_SIM:
        for item in items:
            if item.get_closest_marker("sim"):
                item.add_marker(pytest.mark.skip(reason="needs the simulator: the [sim] extra"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "setup":
        _SimImportTries.tried = False
    report = yield
    if not HAS_SIM and report.failed and (_SimImportTries.tried or SIM_HINT in report.longreprtext):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, "needs the simulator: the [sim] extra")
    return report
