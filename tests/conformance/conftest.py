"""Two emulators for the conformance suite, each started once per session on a free port.

`fast_emulator` runs 20,000 emulated seconds per real second, so batches finish in a blink.
`clock_emulator` barely moves on its own (and wants a real key): tests step it with
`control.advance_clock` to see every intermediate status.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conformance.recorder import SpecRecorder

CLOCK_KEY = "sk-conformance"


def _serve(config: EmulatorConfig) -> Iterator[EmulatorServer]:
    server = EmulatorServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fast_emulator() -> Iterator[EmulatorServer]:
    yield from _serve(EmulatorConfig(speed=20_000.0))


@pytest.fixture(scope="session")
def clock_emulator() -> Iterator[EmulatorServer]:
    yield from _serve(EmulatorConfig(speed=1e-6, api_key=CLOCK_KEY))


@pytest.fixture
def recorder() -> SpecRecorder:
    return SpecRecorder()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults a test adds end with it, so tests sharing an emulator stay independent."""
    yield
    for name in ("fast_emulator", "clock_emulator"):
        if name in request.fixturenames:
            server: EmulatorServer = request.getfixturevalue(name)
            server.control.clear_faults()
