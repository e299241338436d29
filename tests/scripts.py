"""Loading the benchmark scripts of ``scripts/`` (not a package) as modules, for the tests of their
bookkeeping and reports."""

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@contextmanager
def load_scripts(*names: str) -> Iterator[tuple[ModuleType, ...]]:
    """``scripts/<name>.py`` for each name, loaded in order with ``scripts/`` on ``sys.path`` (the scripts
    import their siblings, e.g. ``_common``) for as long as the block runs."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        modules = []
        for name in names:
            spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules.append(module)
        yield tuple(modules)
    finally:
        sys.path.remove(str(SCRIPTS))
