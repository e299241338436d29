"""The operator of a robot run at a real (pseudo-)terminal: one key labels an episode, keys pressed while
the arm moved are not answers, the reset window closes by itself; no terminal is a clear error."""

import io
import os
import threading
import time

import pytest

from gipo_robot.train.arm.operator import OperatorError, ScriptedOperator, TerminalOperator


def press(master: int, keys: str, after_s: float = 0.2) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(after_s), os.write(master, keys.encode())))
    thread.start()
    return thread


def test_one_key_labels_the_episode_and_stale_keys_are_ignored(terminal):
    master, slave = terminal
    out = io.StringIO()
    operator = TerminalOperator(fd=slave, out=out)
    os.write(master, b"y")  # pressed while the arm moved: flushed, not an answer
    time.sleep(0.05)
    typing = press(master, "q?n")  # unknown keys are skipped until one of y/n/x/r
    assert operator.label(3, hint=True) == "failure"
    typing.join()
    assert "episode 3 ended (the simulator says success)" in out.getvalue()
    for key, label in (("y", "success"), ("x", "discard"), ("r", "rerun")):
        typing = press(master, key)
        assert operator.label(4, hint=None) == label
        typing.join()


def test_the_reset_window_waits_for_enter_or_closes_by_itself(terminal):
    master, slave = terminal
    operator = TerminalOperator(fd=slave, out=io.StringIO())
    typing = press(master, "\r")
    assert operator.wait_reset(5.0) is True
    typing.join()
    t0 = time.monotonic()
    assert operator.wait_reset(0.3) is False
    assert 0.25 <= time.monotonic() - t0 < 2.0


def test_no_terminal_is_a_clear_error(tmp_path):
    with open(tmp_path / "not-a-tty", "w") as f, pytest.raises(OperatorError, match="needs a terminal"):
        TerminalOperator(fd=f.fileno())


def test_the_scripted_operator_answers_from_its_keys_then_from_the_hint():
    operator = ScriptedOperator("nx")
    assert [operator.label(i, hint=True) for i in range(4)] == ["failure", "discard", "success", "success"]
    assert ScriptedOperator().label(0, hint=None) == "failure"
    with pytest.raises(ValueError, match="unknown keys"):
        ScriptedOperator("yq")
