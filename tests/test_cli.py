"""The console script: commands listed, ``--json`` prints exactly one JSON object on stdout."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_commands(tmp_path):
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("quickstart", "objectives", "bias-variance"):
        assert command in out.stdout


def test_objectives_json(tmp_path):
    out = run("objectives", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = json.loads(out.stdout)["objectives"]
    assert table["gipo"]["sigma"] == 1.0
    assert table["ppo_clip"]["eps"] == 0.2


@pytest.mark.parametrize("command", [["quickstart", "--smoke"], ["bias-variance", "--pairs", "20"]])
def test_json_mode_prints_exactly_one_object(tmp_path, command):
    out = run(*command, "--out", str(tmp_path / "run"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # fails if anything else was printed on stdout
    assert out.stdout.strip().count("\n") == 0
    assert Path(result["files"]["png"]).stat().st_size > 10_000
    assert json.loads(Path(result["files"]["json"]).read_text())["levels"]
