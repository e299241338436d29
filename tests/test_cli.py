"""The console script: commands listed, ``--json`` prints exactly one JSON object on stdout."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXE = shutil.which("gipo-robot", path=os.path.dirname(sys.executable)) or "gipo-robot"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_commands(tmp_path):
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("quickstart", "objectives", "bias-variance", "finetune", "train-bc", "eval", "plot"):
        assert command in out.stdout


def test_objectives_json(tmp_path):
    out = run("objectives", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = json.loads(out.stdout)["objectives"]
    assert table["gipo"]["sigma"] == 1.0
    assert table["ppo_clip"]["eps"] == 0.2


def test_bias_variance_json_prints_exactly_one_object(tmp_path):
    out = run("bias-variance", "--pairs", "20", "--out", str(tmp_path / "run"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # fails if anything else was printed on stdout
    assert out.stdout.strip().count("\n") == 0
    assert Path(result["files"]["png"]).stat().st_size > 10_000
    assert json.loads(Path(result["files"]["json"]).read_text())["levels"]


def test_bias_variance_authors_setup(tmp_path):
    out = run("bias-variance", "--setup", "authors", "--out", str(tmp_path / "run"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["setup"] == "authors" and summary["batch_size"] == 1
    assert len(summary["levels"]) == 21  # 3 hand-set targets x 7 behaviours
    assert set(summary["levels"][0]["best_mse_n1"]) == {"gipo", "ppo_clip", "sapo", "no_clip"}
    assert json.loads(Path(summary["files"]["json"]).read_text())["setup"] == "authors"
    bad = run("bias-variance", "--setup", "paper", "--out", str(tmp_path / "x"), "--json", cwd=tmp_path)
    assert bad.returncode == 1 and "ours or authors" in json.loads(bad.stdout)["error"]


def test_quickstart_smoke_runs_every_stage(tmp_path):
    out = run("quickstart", "--smoke", "--out", str(tmp_path / "qs"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert out.stdout.strip().count("\n") == 0
    for stage in ("bc", "finetuned"):
        assert 0.0 <= result[stage]["success_rate"] <= 1.0
        lo, hi = result[stage]["success_ci95"]
        assert lo <= result[stage]["success_rate"] <= hi
    assert Path(result["files"]["png"]).stat().st_size > 10_000
    for name in (
        "demos.zarr",
        "bc/model.safetensors",
        "gipo/metrics.csv",
        "gipo/rollouts.zarr",
        "summary.json",
    ):
        assert (tmp_path / "qs" / name).exists(), name
