"""A ROS 1 system on loopback for the tests: rosmaster, rosapi, the real rosbridge websocket and a rospy arm.

The processes run under the system Python (Debian's ROS 1 packages live there; ``make setup-ros`` installs
them), started from ``scripts/ros1/``; the tests (in the venv) talk to the arm only through the websocket,
with roslibpy, like ``RosArm`` does. Every process gets ``ROS_IP=ROS_HOSTNAME=127.0.0.1`` (rospy then binds
its XML-RPC and TCPROS servers to loopback) and the websocket is bound to 127.0.0.1 by the launcher.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = "/usr/bin/python3"
LAUNCHER = ROOT / "scripts" / "ros1" / "run_rosbridge.py"
ARM_NODE = ROOT / "scripts" / "ros1" / "arm_node.py"
BUILD = ROOT / "build" / "ros1"
#: What the system Python must import to run rosmaster, rosapi, rosbridge and the arm (``make setup-ros``).
MODULES = (
    "rospy",
    "rosgraph",
    "rostopic",
    "rosservice",
    "rosnode",
    "genpy",
    "catkin_pkg",
    "autobahn.twisted",
    "twisted",
    "bson",
    "tornado",
    "PIL",
    "std_msgs.msg",
    "sensor_msgs.msg",
    "trajectory_msgs.msg",
)


def missing() -> str | None:
    """Why the ROS 1 system cannot start here (what to install), or None if it can."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("rosmaster") is None:
        return "no ROS 1 here (no /usr/bin/python3 or rosmaster): run `make setup-ros` (Debian bookworm)"
    probe = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", probe, *MODULES], env=_system_env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"the system Python lacks ROS 1 modules ({last}): run `make setup-ros`"
    return None


def _system_env() -> dict[str, str]:
    """This process's environment without the venv (the system Python must not see its packages)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Ros1System:
    """Start with :meth:`start`, stop with :meth:`stop`; ``ws_port`` is the rosbridge websocket's port."""

    def __init__(self) -> None:
        self.master_port, self.ws_port = free_port(), free_port()
        self.home = Path(tempfile.mkdtemp(prefix="gipo-ros1-"))
        self.env = _system_env() | {
            "ROS_MASTER_URI": f"http://127.0.0.1:{self.master_port}",
            "ROS_IP": "127.0.0.1",
            "ROS_HOSTNAME": "127.0.0.1",
            "ROS_HOME": str(self.home),
            "ROS_LOG_DIR": str(self.home / "log"),
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def master(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(self.env["ROS_MASTER_URI"])

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it)
        self.procs[name] = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )
        log.close()

    def start(self, timeout: float = 60.0) -> Ros1System:
        """Start everything and wait until the websocket listens, rosapi serves and the arm publishes.

        Raises:
            RuntimeError: something did not come up within ``timeout`` s (the message has the logs' tails).
        """
        deadline = time.monotonic() + timeout
        self._spawn("rosmaster", [shutil.which("rosmaster"), "--core", "-p", str(self.master_port)])
        build = [SYSTEM_PYTHON, str(LAUNCHER), "build", "--build", str(BUILD)]
        subprocess.run(build, env=self.env, check=True, capture_output=True, cwd=ROOT)
        self._wait(lambda: self._master_up(), deadline, "rosmaster")
        self._spawn("rosapi", [SYSTEM_PYTHON, str(LAUNCHER), "rosapi", "--build", str(BUILD)])
        self.start_websocket(deadline)
        self._spawn("arm", [SYSTEM_PYTHON, str(ARM_NODE)])
        self._wait(lambda: self._has_service("/rosapi/get_time"), deadline, "rosapi")
        self._wait(lambda: self._has_publisher("/joint_states"), deadline, "arm node")
        self._wait(lambda: _accepts(self.ws_port), deadline, "rosbridge websocket")
        return self

    def start_websocket(self, deadline: float | None = None) -> None:
        """(Re)start the rosbridge websocket on ``ws_port``; waits for it only when given a deadline."""
        argv = [SYSTEM_PYTHON, str(LAUNCHER), "websocket", "--build", str(BUILD), "--port", str(self.ws_port)]
        self._spawn("websocket", argv)
        if deadline is not None:
            self._wait(lambda: _accepts(self.ws_port), deadline, "rosbridge websocket")

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        """SIGINT (rospy shuts down cleanly), then SIGKILL after ``timeout`` s; only our own child."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def stop(self) -> None:
        for name in ("arm", "websocket", "rosapi", "rosmaster"):
            self.stop_process(name)
        shutil.rmtree(self.home, ignore_errors=True)

    def listening(self) -> list[tuple[str, str, int]]:
        """``(process, address, port)`` of every TCP socket our processes listen on, from ``ss -ltnpH``."""
        pids = {proc.pid: name for name, proc in self.procs.items()}
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        found = []
        for line in out.splitlines():
            fields = line.split()
            local = fields[3]
            address, port = local.rsplit(":", 1)
            for pid in map(int, re.findall(r"pid=(\d+)", line)):
                if pid in pids:
                    found.append((pids[pid], address.strip("[]"), int(port)))
        return found

    def logs(self, lines: int = 30) -> str:
        tails = []
        for log in sorted(self.home.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def _wait(self, ready, deadline: float, what: str) -> None:
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{dead} exited" if dead else "timed out"
                raise RuntimeError(f"ROS 1 system: {what} did not come up ({why})\n{self.logs()}")
            time.sleep(0.1)

    def _master_up(self) -> bool:
        try:
            return self.master.getSystemState("/gipo_tests")[0] == 1
        except OSError:
            return False

    def _has_service(self, service: str) -> bool:
        return self.master.lookupService("/gipo_tests", service)[0] == 1

    def _has_publisher(self, topic: str) -> bool:
        publishers = self.master.getSystemState("/gipo_tests")[2][0]
        return any(name == topic and nodes for name, nodes in publishers)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
