"""The package's floor plan holds: components do not import the layers above them, and nothing grows into a
god file (issue 23's limits: no module over 600 lines, no function over 80 outside numba kernels)."""

import ast
from pathlib import Path

import gipo_robot

PACKAGE = Path(gipo_robot.__file__).parent

# Subpackage -> the gipo_robot subpackages it must not import (lazily or not; strings in registries are fine).
FORBIDDEN = {
    "datasets": {"sim", "hardware", "policies", "train", "teleop", "loops", "cli"},
    "hardware": {"sim", "policies", "train", "teleop", "loops", "cli"},
    "sim": {"policies", "train", "teleop", "loops", "cli"},
    "policies": {"train", "loops", "cli", "hardware", "teleop"},
    "reward": {"sim", "hardware", "train", "teleop", "loops", "cli"},
}
PURE = ("objectives.py", "advantages.py", "configs.py")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_components_import_nothing_from_the_layers_above():
    broken = []
    for sub, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / sub).rglob("*.py"):
            for name in imported_modules(path):
                parts = name.split(".")
                if parts[0] == "gipo_robot" and len(parts) > 1 and parts[1] in forbidden:
                    broken.append(f"{path.relative_to(PACKAGE)} imports {name}")
    for file in PURE:
        broken += [
            f"{file} imports {n}" for n in imported_modules(PACKAGE / file) if n.startswith("gipo_robot")
        ]
    assert not broken, broken


def test_no_god_files_and_no_god_functions():
    too_big = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        if len(source.splitlines()) > 600:
            too_big.append(f"{path.relative_to(PACKAGE)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                numba = any(
                    "njit" in ast.unparse(d) or "numba" in ast.unparse(d) for d in node.decorator_list
                )
                length = node.end_lineno - node.lineno + 1
                if length > 80 and not numba:
                    too_big.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, too_big
