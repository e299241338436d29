"""Run the vendored rosbridge_suite ROS 1 server (third_party/rosbridge_suite, tag 0.11.17) on Debian's ROS 1.

Runs under the system Python (``/usr/bin/python3``), where Debian's ROS 1 packages live; ``make setup-ros``
installs them. The vendored code runs unmodified; this launcher supplies what a catkin workspace would:

- ``build``: generates the Python message/service classes of ``rosbridge_msgs`` and ``rosapi`` with genpy
  into ``--build`` (once per vendored commit), and writes a minimal ``package.xml`` for each of Debian's ROS
  message packages (Debian ships their Python code and ``.msg`` files but no manifest, and rosbridge's
  ``ros_loader`` asks ``roslib`` for the manifest before importing ``<pkg>.msg``);
- ``websocket``: ``rosbridge_server/scripts/rosbridge_websocket.py`` bound to ``--address`` (default and
  only allowed: a loopback address). Upstream reads ``--address`` but calls autobahn's ``listenWS`` without
  an interface, so it listens on 0.0.0.0 whatever it is told; here ``listenWS`` gets the address;
- ``rosapi``: ``rosapi/scripts/rosapi_node`` (``/rosapi/get_time`` and friends).

``rosauth`` (only used with ``~authenticate``, which stays off) is not packaged for Debian: a stand-in module
satisfies the import and refuses to be used.

The caller sets ``ROS_MASTER_URI`` and ``ROS_IP=127.0.0.1`` (so rospy's own servers bind loopback too).

Usage: ``/usr/bin/python3 scripts/ros1/run_rosbridge.py {build,websocket,rosapi} --build DIR [--port N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import runpy
import sys
import types
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "third_party" / "rosbridge_suite"
COMMIT = (VENDOR / "COMMIT").read_text().split()[0]
GENERATED = ("rosbridge_msgs", "rosapi")  # vendored packages whose messages need generating
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

STUB_MANIFEST = """<?xml version="1.0"?>
<package format="2">
  <name>{name}</name>
  <version>0.0.0</version>
  <description>Manifest for Debian's python3 package of {name} (Debian ships none), for roslib.</description>
  <maintainer email="nobody@example.com">nobody</maintainer>
  <license>BSD</license>
</package>
"""


def build(out: Path) -> None:
    """Generate the vendored packages' messages into ``out/python`` and manifests into ``out/share``."""
    stamp = out / "python" / ".built"
    key = f"{COMMIT} {hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}"
    if stamp.is_file() and stamp.read_text() == key:  # built from this commit by this launcher
        return
    from genpy.generate_initpy import write_modules
    from genpy.generator import MsgGenerator, SrvGenerator

    search = {pkg: [str(VENDOR / pkg / "msg")] for pkg in GENERATED}
    for pkg in GENERATED:
        target = out / "python" / pkg
        target.mkdir(parents=True, exist_ok=True)
        src = VENDOR / pkg / "src" / pkg
        for py in src.glob("*.py") if src.is_dir() else ():  # the package's own modules beside msg/, srv/
            (target / py.name).write_text(py.read_text())
        if not (target / "__init__.py").exists():
            (target / "__init__.py").write_text("")
        for kind, generator in (("msg", MsgGenerator()), ("srv", SrvGenerator())):
            files = sorted(str(f) for f in (VENDOR / pkg / kind).glob(f"*.{kind}"))
            if files:
                if generator.generate_messages(pkg, files, str(target / kind), search):
                    raise SystemExit(f"genpy failed on {VENDOR / pkg / kind}")
                write_modules(str(target / kind))
    for msg_pkg in sorted(DIST_PACKAGES.glob("*/msg/__init__.py")):
        name = msg_pkg.parent.parent.name
        manifest = out / "share" / name / "package.xml"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(STUB_MANIFEST.format(name=name))
    stamp.write_text(key)


def use_build(out: Path) -> None:
    """Put the generated and vendored packages on ``sys.path`` and the manifests on ROS_PACKAGE_PATH."""
    sys.path[:0] = [
        str(out / "python"),
        str(VENDOR / "rosbridge_library" / "src"),
        str(VENDOR / "rosbridge_server" / "src"),
    ]
    os.environ["ROS_PACKAGE_PATH"] = os.pathsep.join([str(out / "share"), str(VENDOR)])
    rosauth, srv = types.ModuleType("rosauth"), types.ModuleType("rosauth.srv")

    class Authentication:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("rosauth is not installed here: rosbridge's ~authenticate is unsupported")

    srv.Authentication = Authentication
    rosauth.srv = srv
    sys.modules.update({"rosauth": rosauth, "rosauth.srv": srv})


def bind_listen_ws_to_the_address() -> None:
    """Make autobahn's ``listenWS`` listen on the address in the factory's URL (upstream passes none)."""
    import autobahn.twisted.websocket as ws

    listen = ws.listenWS

    def listen_on_address(factory, contextFactory=None, backlog=50, interface=""):
        return listen(factory, contextFactory, backlog, interface=interface or factory.host)

    ws.listenWS = listen_on_address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("build", "websocket", "rosapi"))
    parser.add_argument("--build", type=Path, required=True, help="folder for generated code (kept)")
    parser.add_argument("--port", type=int, default=9090, help="websocket port")
    parser.add_argument("--address", default="127.0.0.1", help="websocket address: a loopback address")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.address).is_loopback:
        parser.error(f"--address {args.address} is not a loopback address; this launcher binds loopback only")
    build(args.build)
    if args.what == "build":
        return
    use_build(args.build)
    if args.what == "websocket":
        bind_listen_ws_to_the_address()
        script = VENDOR / "rosbridge_server" / "scripts" / "rosbridge_websocket.py"
        sys.argv = [str(script), "--port", str(args.port), "--address", args.address]
    else:
        script = VENDOR / "rosapi" / "scripts" / "rosapi_node"
        sys.argv = [str(script)]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
