"""`laneway` starts anywhere: help and version load nothing Linux-only, bare `laneway` helps.

The platform check runs in a fresh interpreter that believes it is on macOS
(`sys.platform = "darwin"`) before anything of Laneway is imported. Two things of the
standard library decide their platform at import and would then look for macOS's own parts,
so they are settled first, as a real Mac has them: the interpreter's build variables
(`sysconfig`) and `_scproxy`, the macOS-only module `urllib.request` imports for proxies.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AS_IF_ON_A_MAC = textwrap.dedent(
    """
    import ctypes
    import sysconfig
    import sys
    import types

    sysconfig.get_config_vars()  # this interpreter's build, read before the pretence
    scproxy = types.ModuleType("_scproxy")
    scproxy._get_proxy_settings = lambda: {}
    scproxy._get_proxies = lambda: {}
    sys.modules["_scproxy"] = scproxy

    loaded = []
    real_cdll = ctypes.CDLL

    class SpyCDLL(real_cdll):
        def __init__(self, name, *args, **kwargs):
            loaded.append(name)
            super().__init__(name, *args, **kwargs)

    ctypes.CDLL = SpyCDLL
    sys.platform = "darwin"

    import client.cli
    import dev.demo
    import dev.stack

    for argv in (["--help"], ["demo", "--help"], ["dev", "--help"], ["--version"]):
        try:
            client.cli.main(argv)
        except SystemExit as done:
            assert done.code == 0, (argv, done.code)
        else:
            raise AssertionError(f"{argv}: help should exit")
    assert client.cli.main([]) == 0
    assert dev.stack._linux_libc() is None, "no prctl off Linux"
    assert loaded == [], f"a shared library was loaded at import: {loaded}"
    print("started as on macOS")
    """
)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_help_starts_without_anything_linux_only() -> None:
    ran = _run("-c", AS_IF_ON_A_MAC)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.rstrip().endswith("started as on macOS")
    assert "usage: laneway [-h] [--version] COMMAND" in ran.stdout
    assert "usage: laneway demo [-h]" in ran.stdout
    assert f"laneway {metadata.version('laneway')}" in ran.stdout


def test_bare_laneway_prints_its_help() -> None:
    ran = _run("-m", "client.cli")
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("usage: laneway")
    for command in ("dev", "demo", "jobs", "submit", "results", "approve"):
        assert f"\n    {command} " in ran.stdout, command


def test_version() -> None:
    ran = _run("-m", "client.cli", "--version")
    assert (ran.returncode, ran.stdout) == (0, f"laneway {metadata.version('laneway')}\n")
