"""gipo-robot: fine-tune robot imitation policies with GIPO from few, stale rollouts."""

__version__ = "0.1.0"
