"""The ``gipo-robot`` command line.

Every command that reports a result takes ``--json`` and then prints exactly one JSON object on stdout;
progress bars and logs go to stderr, so runs can be scripted (``gipo-robot CMD --json | jq``).

The commands live by what they work on: :mod:`.learn` (objectives, bias-variance, quickstart, finetune,
plot, train-bc, eval), :mod:`.data` (info, convert, collect-demos) and :mod:`.robot` (record, deploy,
virtual-arm, virtual-rosbridge). Each registers its commands on the one app in :mod:`.common`. Commands
are thin: they parse flags into the library's config dataclasses (which hold the defaults), call the
library, and print the result.
"""

from gipo_robot.cli import data, finetune, learn, reward, robot  # noqa: F401  (importing registers the commands)
from gipo_robot.cli.common import app

__all__ = ["app"]
