"""What every ``gipo-robot`` command shares: the Typer app, ``--json`` output, error exits."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated

import typer

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
        sys.stdout.write(json.dumps({"error": str(err)}) + "\n")
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
