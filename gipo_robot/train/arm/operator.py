"""Who says whether an episode succeeded, and who resets the scene: a person at the terminal, or a script.

After each episode with ``--reward operator`` the operator presses one key (the same raw-terminal input as
``record``): ``y`` success, ``n`` failure, ``x`` discard (the episode is not stored), ``r`` re-run (discard,
and run the same scene again). With ``--reset operator`` the operator resets the scene and presses Enter;
the window closes by itself after its timeout, so a reset never blocks forever.

:class:`ScriptedOperator` answers from a string of those keys, for headless runs and tests.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from typing import IO, Protocol

__all__ = ["LABEL_KEYS", "Operator", "OperatorError", "ScriptedOperator", "TerminalOperator"]

#: Key -> what happens to the episode that just ended.
LABEL_KEYS = {"y": "success", "n": "failure", "x": "discard", "r": "rerun"}


class OperatorError(RuntimeError):
    """The operator cannot be asked (no terminal) or gave an unusable answer."""


class Operator(Protocol):
    """Labels episodes and resets scenes."""

    def label(self, episode: int, hint: bool | None) -> str:
        """``success``, ``failure``, ``discard`` or ``rerun`` for the episode that just ended; ``hint`` is the
        simulator's success where the robot knows it."""

    def wait_reset(self, timeout_s: float) -> bool:
        """Wait for the operator to reset the scene; True if they confirmed, False on the timeout."""


class TerminalOperator:
    """A person at the terminal on ``fd`` (standard input by default).

    Raises:
        OperatorError: ``fd`` is not a terminal (say ``--labels`` for a scripted operator, or use
            ``--reward sim`` / ``classifier:PATH``).
    """

    def __init__(self, fd: int | None = None, out: IO[str] | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.out = out or sys.stderr
        if not os.isatty(self.fd):
            raise OperatorError(
                "--reward operator needs a terminal to read the operator's keys (standard input is not one); "
                "run it in a terminal, give --labels for a scripted operator, or use --reward sim or "
                "--reward classifier:PATH"
            )

    @contextlib.contextmanager
    def _raw(self):
        saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd)
            termios.tcflush(self.fd, termios.TCIFLUSH)  # keys pressed while the arm moved are not answers
            yield
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def _key(self, timeout_s: float | None) -> str | None:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        return os.read(self.fd, 1).decode(errors="replace") if ready else None

    def label(self, episode: int, hint: bool | None) -> str:
        said = "" if hint is None else f" (the simulator says {'success' if hint else 'failure'})"
        self.out.write(f"\nepisode {episode} ended{said}: y success, n failure, x discard, r re-run? ")
        self.out.flush()
        with self._raw():
            while True:
                key = (self._key(None) or "").lower()
                if key in LABEL_KEYS:
                    self.out.write(f"{LABEL_KEYS[key]}\n")
                    self.out.flush()
                    return LABEL_KEYS[key]

    def wait_reset(self, timeout_s: float) -> bool:
        self.out.write(f"\nreset the scene, then press Enter (going on by itself in {timeout_s:.0f} s) ")
        self.out.flush()
        deadline = time.monotonic() + timeout_s
        with self._raw():
            while (left := deadline - time.monotonic()) > 0:
                if self._key(left) in ("\r", "\n"):
                    self.out.write("\n")
                    return True
        self.out.write("timed out\n")
        return False


class ScriptedOperator:
    """An operator that answers from ``keys`` (``"yynx"``: one key per episode, in order); once they run out
    it answers with the simulator's hint where there is one, else ``n``.

    Raises:
        ValueError: a key that is not one of :data:`LABEL_KEYS`.
    """

    def __init__(self, keys: str = "") -> None:
        bad = sorted(set(keys) - set(LABEL_KEYS))
        if bad:
            raise ValueError(f"--labels: unknown keys {bad}; each is one of {', '.join(LABEL_KEYS)}")
        self.keys = list(keys)
        self.asked = 0

    def label(self, episode: int, hint: bool | None) -> str:
        self.asked += 1
        if self.keys:
            return LABEL_KEYS[self.keys.pop(0)]
        return "success" if hint else "failure"

    def wait_reset(self, timeout_s: float) -> bool:
        return True
