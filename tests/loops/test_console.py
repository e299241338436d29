"""The status line: warnings logged while a session runs become lines above it, never text inside it."""

from __future__ import annotations

import io
import logging
import threading

from gipo_robot.loops.console import StatusLine


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the status line is rewritten in place (``\\r``)."""

    def isatty(self) -> bool:
        return True


def test_a_warning_from_another_thread_prints_above_the_line(capsys):
    out = Terminal()
    status = StatusLine(out, enabled=True)
    logger = logging.getLogger("gipo_robot.hardware.safety")
    with status.logs():
        status.update(lambda rate: "REC episode 1/2 | 0.5 s")
        # the guard's watchdog thread logging while the loop runs
        thread = threading.Thread(target=logger.warning, args=("%s: e-stop: %s", "sim:Lift", "operator"))
        thread.start()
        thread.join()
    status.close()
    text = out.getvalue()
    # the line is cleared, the warning gets a line of its own, and the next update starts fresh
    assert "\r" + " " * len("REC episode 1/2 | 0.5 s") + "\rsim:Lift: e-stop: operator\n" in text
    assert capsys.readouterr().err == ""  # not also through Python's last-resort handler on stderr
    assert logger.propagate and not any(type(h).__name__ == "_NoteHandler" for h in logger.handlers)


def test_a_disabled_line_leaves_logging_alone():
    out = io.StringIO()
    status = StatusLine(out, enabled=False)
    root = logging.getLogger("gipo_robot")
    with status.logs():
        assert root.propagate and not root.handlers
    assert out.getvalue() == ""
