#!/usr/bin/env bash
# What installing gipo-robot's core into a LeRobot 0.6 environment costs (issue 26): a fresh Python 3.12 venv
# gets lerobot[dataset,feetech,dynamixel]==0.6.1, then the core (no [sim]) from this checkout; prints the
# time and size of each step, what the core added, and the import / --help time of the CLI.
#   bash scripts/bench_core_install.sh [VENV_DIR]     (default /tmp/gipo-core-bench; removed first)
set -euo pipefail
venv=${1:-/tmp/gipo-core-bench}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=$(python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || echo "$(pyenv prefix 3.12 | head -1)/bin/python3.12")
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
t0=$(date +%s.%N)
"$venv/bin/python" -m pip install -q "lerobot[dataset,feetech,dynamixel]==0.6.1"
t1=$(date +%s.%N)
mb1=$(du -sm "$venv" | cut -f1)
"$venv/bin/python" -m pip freeze > "$venv/before.txt"
"$venv/bin/python" -m pip install -q "$repo"
t2=$(date +%s.%N)
mb2=$(du -sm "$venv" | cut -f1)
echo "lerobot: $(echo "$t1 - $t0" | bc) s, $mb1 MB; the core added: $(echo "$t2 - $t1" | bc) s, $((mb2 - mb1)) MB"
"$venv/bin/python" -m pip freeze | diff "$venv/before.txt" - | grep '^>' || true
cd /tmp
for _ in 1 2 3; do "$venv/bin/python" -X importtime -c "import gipo_robot.cli.main" 2>&1 | tail -1; done
for _ in 1 2 3; do /usr/bin/time -f "gipo-robot --help: %e s" "$venv/bin/gipo-robot" --help > /dev/null; done
grep -m1 "model name" /proc/cpuinfo
