"""The ``gipo-robot`` entry point: runs the Typer app and turns every way a command can fail into the exit
code convention below, with exactly one JSON object on stdout under ``--json``.

Exit codes (the same for every command):

- ``0``: the command did what was asked (a recording session the operator ended with Ctrl-C included);
- ``1``: an error: bad input (a file, key or field named in the message), an I/O failure (a read-only or
  full disk), a run that failed, or a bug (then with its traceback on stderr; ``GIPO_TRACEBACK=1`` prints
  it for the errors with a message too);
- ``2``: a usage error: an unknown flag, a missing argument, a value of the wrong type;
- ``3``: the robot stopped: an e-stop or a robot fault (an unplugged bus, a servo error, a sensor fault).
  The arm was left holding and the episode in flight was committed as failed.

Under ``--json`` a failure prints ``{"error": "...", "exit_code": N}`` (plus ``"usage": true`` for usage
errors and ``"internal": true`` for bugs); commands that report a result (``record``, ``deploy``) print
their usual summary object with its ``error`` field set instead.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from collections.abc import Sequence

import typer
from typer._click import exceptions as click_exceptions  # typer's vendored click, whose errors it raises
from typer.main import get_command

from gipo_robot.cli import app
from gipo_robot.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from gipo_robot.extras import install_hint

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> None:
    """``gipo-robot``: run one command and exit with the convention's code (see the module docstring)."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line (``sys.argv[1:]`` by default); return its exit code instead of exiting."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    try:
        code = get_command(app).main(args=args, prog_name="gipo-robot", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as err:  # plain `gipo-robot`: the help, as before
        typer.echo(err.ctx.get_help() if err.ctx is not None else err.format_message(), err=True)
        return EXIT_USAGE
    except click_exceptions.UsageError as err:
        return _usage_error(err, as_json)
    except click_exceptions.ClickException as err:  # e.g. a file click could not open
        return _failure(err.format_message(), as_json, err.exit_code or EXIT_ERROR)
    except typer.Abort:  # Ctrl-C at a prompt
        return _failure("aborted", as_json, EXIT_ERROR)
    except KeyboardInterrupt:
        return _failure("interrupted", as_json, 130)
    except ImportError as err:
        hint = install_hint(err)
        if hint is None:  # a broken install, not a missing extra: the traceback finds it
            traceback.print_exc(file=sys.stderr)
        return _failure(hint or f"internal error: {type(err).__name__}: {err}", as_json, EXIT_ERROR)
    except OSError as err:
        if err.errno == errno.EPIPE:  # stdout closed by the reader (`| head`): not our failure
            return EXIT_OK
        return _failure(_os_error_text(err), as_json, EXIT_ERROR)
    except Exception as err:  # the last line of defence: one JSON object, even for a bug
        if _is_ours(err):
            if os.environ.get("GIPO_TRACEBACK"):  # where a message is not enough to find the cause
                traceback.print_exc(file=sys.stderr)
            return _failure(str(err), as_json, EXIT_ERROR)
        traceback.print_exc(file=sys.stderr)
        return _failure(f"internal error: {type(err).__name__}: {err}", as_json, EXIT_ERROR, internal=True)
    return int(code or 0)


def _usage_error(err: click_exceptions.UsageError, as_json: bool) -> int:
    if as_json:
        _print_json({"error": err.format_message(), "exit_code": EXIT_USAGE, "usage": True})
    else:
        from typer import rich_utils

        rich_utils.rich_format_error(err)
    return EXIT_USAGE


def _failure(message: str, as_json: bool, code: int, *, internal: bool = False) -> int:
    if as_json:
        _print_json({"error": message, "exit_code": code, **({"internal": True} if internal else {})})
    else:
        typer.echo(f"error: {message}", err=True)
    return code


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _is_ours(err: Exception) -> bool:
    """An error raised on purpose, with a message for the user: ours, or a ValueError of bad input."""
    return isinstance(err, ValueError) or type(err).__module__.startswith("gipo_robot")


def _os_error_text(err: OSError) -> str:
    """``/data/s.zarr: No space left on device`` (the path first, where the error knows it)."""
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)
