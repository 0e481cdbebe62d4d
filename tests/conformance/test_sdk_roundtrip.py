"""The SDK-only round trip script passes against the emulator, and notices when it should not."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer


@pytest.fixture
def fast_emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorConfig(speed=20_000.0))
    server.start()
    yield server
    server.stop()


def run_script(server: EmulatorServer) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "roundtrip"}
    return subprocess.run(
        [sys.executable, "scripts/sdk_roundtrip.py", "--poll-interval", "0.1", "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_1000_line_batch_and_background_responses(fast_emulator: EmulatorServer) -> None:
    result = run_script(fast_emulator)
    assert result.returncode == 0, result.stderr
    assert "1000/1000 answered" in result.stdout
    assert result.stdout.strip().endswith("roundtrip ok")
    counts = fast_emulator.control.stats()["counts"]
    assert counts["batches"] == 1 and counts["responses"] == 2


def test_the_script_reports_failed_requests(fast_emulator: EmulatorServer) -> None:
    fast_emulator.control.add_fault(
        {"kind": "batch_fail_fraction", "match": {"path_prefix": "/v1/batches"}, "fraction": 0.05}
    )
    result = run_script(fast_emulator)
    assert result.returncode == 1
    assert "PROBLEM: req-" in result.stderr
