"""Where a fine-tuning run's success label comes from when neither a simulator nor an operator gives it.

``classifier.py``: a success classifier trained on a store's labelled episodes (``train_classifier``),
with its held-out false-positive and false-negative rates; ``load_classifier`` refuses one above the
caller's false-positive limit. ``examples.py``: which features and steps it learns from. ``label.py``:
relabelling stored episodes, one by one or interactively in a terminal (``gipo-robot label``).

Imports ``datasets`` and torch; nothing from ``sim``, ``hardware``, ``train``, ``loops`` or ``teleop``.
"""

from gipo_robot.reward.classifier import (
    ClassifierError,
    ClassifierRefused,
    ClassifierReport,
    SuccessClassifier,
    load_classifier,
    train_classifier,
)

__all__ = [
    "ClassifierError",
    "ClassifierRefused",
    "ClassifierReport",
    "SuccessClassifier",
    "load_classifier",
    "train_classifier",
]
