"""Shared bits of the benchmark scripts: provenance recorded into every result JSON."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata


def git_commit() -> str:
    """The checkout's commit, ``-dirty`` if code changed (results under benchmarks/ don't count)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!benchmarks"], capture_output=True, text=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict:
    """Machine, commit, date and numeric packages for a benchmark result.

    A seeded run repeats bit for bit on one machine, but not across CPUs or numeric-package versions
    (float rounding differs and a long RL run amplifies it), so both are recorded beside the result.
    """
    import torch

    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": None, "torch": torch.__version__}
    machine.update({name: package_version(name) for name in ("mujoco", "numpy", "numba")})
    date = datetime.now(UTC).isoformat(timespec="seconds")
    return {"date": date, "commit": git_commit(), "machine": machine}
