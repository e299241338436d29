"""The Zarr episode store: the single source of truth for every recorded step.

``EpisodeStore`` (store.py) records and reads episodes; ``schema.py`` declares features; ``validate``
checks a store; ``sampler.py`` draws transitions, action chunks and whole episodes for training (torch
is imported only there); ``from_robomimic.py`` converts robomimic HDF5 files both ways.
"""

from gipo_robot.datasets import codecs as _codecs  # noqa: F401  (registers the zarr image codec)
from gipo_robot.datasets.schema import SOURCES, DatasetError, Feature, Schema, default_schema, step_schema
from gipo_robot.datasets.store import EpisodeMeta, EpisodeStore, EpisodeWriter
from gipo_robot.datasets.validate import find_problems, validate

__all__ = [
    "SOURCES",
    "DatasetError",
    "EpisodeMeta",
    "EpisodeStore",
    "EpisodeWriter",
    "Feature",
    "Schema",
    "default_schema",
    "find_problems",
    "step_schema",
    "validate",
]
