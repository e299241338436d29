"""What every ``gipo-robot`` command shares: the Typer app, ``--json`` output, error exits."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ROBOT_STOPPED = 0, 1, 2, 3
"""The exit codes of every command (see :mod:`gipo_robot.cli.main`)."""

app = typer.Typer(
    name="gipo-robot",
    help="Fine-tune robot imitation policies with GIPO from few, stale rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout; progress on stderr.")
]


def emit(result: dict, as_json: bool, human: str) -> None:
    """Print the result: one JSON object on stdout, or the human summary."""
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        typer.echo(human)


def error_exit(err: Exception, as_json: bool) -> typer.Exit:
    """Report an input error (``{"error": ...}`` on stdout under --json); return the exit to raise."""
    if as_json:
        sys.stdout.write(json.dumps({"error": str(err), "exit_code": EXIT_ERROR}) + "\n")
    else:
        typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=1)


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """While ``enabled``, anything printed by libraries goes to stderr, keeping stdout for the JSON object."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def given_on_command_line(ctx: typer.Context, names: list[str]) -> list[str]:
    """The parameters among ``names`` the user typed (not left at their defaults)."""
    # By name: typer vendors its own copy of click, whose ParameterSource is not click's.
    return [n for n in names if getattr(ctx.get_parameter_source(n), "name", None) == "COMMANDLINE"]


MIN_FREE_BYTES = 64 * 2**20
"""Free space a command that writes episodes or checkpoints wants before it starts (64 MiB)."""


def check_writable(path: Path, *, min_free: int = MIN_FREE_BYTES) -> None:
    """Fail before any work (before a robot moves) when ``path`` cannot be written.

    ``path`` is a store, checkpoint or run folder to create or to append to. A probe file is created and
    removed where it will go (its nearest existing folder), and the disk must have ``min_free`` bytes free.

    Raises:
        ValueError: naming ``path``: a read-only or full disk, or no permission.
    """
    where = Path(path)
    while not where.is_dir():  # the folder itself if it exists, else its nearest existing parent
        where = where.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".gipo-write-check-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{path}: cannot write there: {err.strerror or err}") from None
    free = shutil.disk_usage(where).free
    if free < min_free:
        raise ValueError(
            f"{path}: only {free / 2**20:.1f} MiB free on its disk; it needs {min_free / 2**20:.0f} MiB"
        )
