"""Fixtures shared across the test folders."""

import os

import pytest


@pytest.fixture
def terminal():
    """A pseudo-terminal ``(master, slave)``: tests type into ``master``, code under test reads ``slave``."""
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)
