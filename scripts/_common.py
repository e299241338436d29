"""Shared bits of the benchmark scripts: provenance recorded into every result JSON."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime


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


def provenance() -> dict:
    """Machine, commit and date for a benchmark result."""
    import torch

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": None, "torch": torch.__version__},
    }
