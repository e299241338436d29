"""The Zarr episode store: the single source of truth for every recorded step.

``EpisodeStore`` (store.py reads, writer.py writes, layout.py lays out the folder) records and reads
episodes; ``schema.py`` declares features and the one step schema every writer uses (``step_schema``);
``validate`` checks a store; ``sampler.py`` draws transitions, action chunks and whole episodes for
training (torch is imported only there); ``importers.py`` registers the datasets of other formats
(robomimic HDF5, LeRobot, Diffusion Policy replay buffers: ``from_*.py``, imported only when used).
"""

from gipo_robot.datasets import codecs as _codecs  # noqa: F401  (registers the zarr image codec)
from gipo_robot.datasets.importers import IMPORTERS, detect_format, import_dataset, open_dataset
from gipo_robot.datasets.schema import SOURCES, DatasetError, Feature, Schema, step_schema
from gipo_robot.datasets.store import EpisodeMeta, EpisodeStore
from gipo_robot.datasets.validate import find_problems, validate
from gipo_robot.datasets.writer import EpisodeWriter

__all__ = [
    "IMPORTERS",
    "SOURCES",
    "DatasetError",
    "EpisodeMeta",
    "EpisodeStore",
    "EpisodeWriter",
    "Feature",
    "Schema",
    "detect_format",
    "find_problems",
    "import_dataset",
    "open_dataset",
    "step_schema",
    "validate",
]
