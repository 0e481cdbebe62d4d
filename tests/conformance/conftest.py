"""One emulator for the conformance suite, fast enough that batches finish in a blink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conformance.recorder import SpecRecorder


@pytest.fixture(scope="module")
def spec_emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorConfig(speed=20_000.0))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def recorder() -> SpecRecorder:
    return SpecRecorder()
