"""Tests of gipo_robot.datasets (the Zarr episode store)."""
