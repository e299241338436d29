"""`finetune --sigma -1` (issue 28 item 12): the flag is gone (replaced by --objective-param sigma=...), and a
negative sigma is refused before the policy is read, an env steps or the run folder exists."""

import json
import subprocess
import sys
import time
from pathlib import Path

EXE = str(Path(sys.executable).parent / "gipo-robot")


def test_a_negative_sigma_fails_fast_naming_it(tmp_path):
    start = time.monotonic()
    done = subprocess.run(
        [EXE, "finetune", "--policy", str(tmp_path / "no-policy"), "--objective-param", "sigma=-1",
         "--out", str(tmp_path / "run"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]  # one JSON object: sigma is named, not the missing policy
    assert "sigma" in error and "-1" in error and "no-policy" not in error, error
    assert not (tmp_path / "run").exists()
    assert time.monotonic() - start < 60  # a CLI start, no simulator (loose for a loaded 2-core machine)
    old = subprocess.run([EXE, "finetune", "--sigma", "-1"], capture_output=True, text=True, timeout=120)
    assert old.returncode == 2 and "--sigma" in old.stderr + old.stdout  # a usage error naming the flag
