"""The command line's contract (issue 28 item 11), through the installed ``gipo-robot`` entry point: every
failure under ``--json`` prints exactly one JSON object on stdout and exits non-zero (1 an error, 2 a usage
error), never a bare traceback; commands that write check the disk before any work."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GIPO = [sys.executable, "-m", "gipo_robot"]
ENV = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}


def gipo(*args: str, cwd: Path) -> tuple[int, dict | None, str]:
    """Run one command; (exit code, the one JSON object on stdout or None, stderr)."""
    done = subprocess.run([*GIPO, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert len(lines) <= 1, f"more than one line on stdout: {done.stdout!r}"
    return done.returncode, json.loads(lines[0]) if lines else None, done.stderr


@pytest.mark.parametrize(
    "args, code, says",
    [
        (["collect-demos", "--task", "Nope", "--out", "a.zarr"], 1, "unknown task 'Nope'"),
        (["collect-demos", "--task", "Square", "--out", "b.zarr"], 1, "no scripted expert for task 'Square'"),
        (["finetune", "--resume", "--out", "nosuchrun"], 1, "nosuchrun"),
        (["info", "--bogus"], 2, "No such option: --bogus"),
        (["train-bc"], 2, "Missing argument"),
        (["deploy", "nockpt", "--robot", "sim:Lift", "--episodes", "x"], 2, "Invalid value for '--episodes'"),
    ],
)
def test_every_failure_is_one_json_object_and_a_nonzero_exit(tmp_path, args, code, says):
    exit_code, obj, stderr = gipo(*args, "--json", cwd=tmp_path)
    assert exit_code == code and obj is not None and says in obj["error"], (exit_code, obj, stderr)
    assert obj["exit_code"] == code and obj.get("usage", False) is (code == 2)
    assert "Traceback" not in stderr
    assert not (tmp_path / "b.zarr").exists()  # no expert: refused before a store was created


def test_without_json_errors_go_to_stderr_and_usage_errors_exit_2(tmp_path):
    done = subprocess.run([*GIPO, "info", "--bogus"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "" and "No such option" in done.stderr
    code, obj, stderr = gipo("collect-demos", "--task", "Nope", cwd=tmp_path)
    assert code == 1 and obj is None and stderr.strip().startswith("error: unknown task 'Nope'; known: Can")


def test_an_existing_out_names_the_flag_that_replaces_it(tmp_path):
    (tmp_path / "demos.zarr").mkdir()
    code, obj, _ = gipo("collect-demos", "--out", "demos.zarr", "--episodes", "1", "--json", cwd=tmp_path)
    assert code == 1 and "pass --overwrite to replace it" in obj["error"]


# ------------------------------------------------------------------------------ read-only and full disks


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A small tmpfs at ``path`` (needs root, as on these machines; skipped where mounting is refused)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "demos.zarr"
    code, _, stderr = gipo("collect-demos", "--episodes", "2", "--out", str(out), "--json", cwd=out.parent)
    assert code == 0, stderr
    return out


@pytest.mark.sim
@pytest.mark.parametrize("disk", ["ro", "full"])
def test_commands_that_write_refuse_a_read_only_or_full_disk_before_any_work(tmp_path, demos, disk):
    options = "size=1m,ro" if disk == "ro" else "size=1m"
    says = "Read-only file system" if disk == "ro" else "MiB free on its disk"
    with tmpfs(tmp_path / "disk", options) as mnt:
        commands = [
            ["collect-demos", "--episodes", "1", "--out", str(mnt / "d.zarr")],
            ["train-bc", str(demos), "--steps", "5", "--out", str(mnt / "bc")],
            ["record", "--robot", "sim:Lift", "--device", "scripted", "--max-seconds", "1", "--no-realtime",
             "--out", str(mnt / "r.zarr")],
        ]  # fmt: skip
        for args in commands:
            code, obj, stderr = gipo(*args, "--json", cwd=tmp_path)
            assert code == 1 and says in obj["error"] and str(mnt) in obj["error"], (args, obj, stderr)
            assert "Traceback" not in stderr
            assert list(mnt.iterdir()) == []  # nothing half-written
